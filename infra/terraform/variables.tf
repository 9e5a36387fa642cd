variable "region" {
  type        = string
  description = "AWS region of the buckets and the Spark jobs"
  default     = "eu-west-1"
}

variable "environment" {
  type        = string
  description = "Name suffix, e.g. prod or staging"
}

variable "raw_retention_days" {
  type        = number
  description = "Landing files expire after this many days (privacy.raw_days in conf/dmp.yaml)"
  default     = 30
}

variable "audience_retention_days" {
  type        = number
  description = "Audience folders expire after this many days (platforms keep their own copy)"
  default     = 90
}

variable "destinations" {
  type = map(object({
    principal_arn = string # the AWS principal the ad platform reads with
  }))
  description = "Ad platforms reading the audience bucket; each reads only <name>/ (the destination name in conf/dmp.yaml)"
  default     = {}
}

variable "release_bucket" {
  type        = string
  description = "Bucket holding the packaged jobs (jobs.zip, cli.py, conf/, jars) for EMR Serverless"
}
