output "buckets" {
  description = "Bucket names for conf/dmp.yaml storage.* (as s3a:// URIs)"
  value       = { for k, b in aws_s3_bucket.dmp : k => "s3a://${b.bucket}" }
}

output "spark_job_role_arn" {
  value = aws_iam_role.spark_jobs.arn
}

output "emr_serverless_application_id" {
  value = aws_emrserverless_application.dmp.id
}

output "job_driver_template" {
  value = local.job_driver_template
}
