# The managed Spark service: an EMR Serverless application on Spark 4.x; Airflow submits one
# job run per DMP job (see infra/k8s/ for the same jobs on Kubernetes).

resource "aws_emrserverless_application" "dmp" {
  name          = "open-dmp-${var.environment}"
  release_label = "emr-7.12.0"
  type          = "SPARK"

  maximum_capacity {
    cpu    = "64 vCPU"
    memory = "256 GB"
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = 15
  }
}

locals {
  # what Airflow passes to the EMR Serverless StartJobRun API for, e.g., `dmp identity`
  job_driver_template = {
    sparkSubmit = {
      entryPoint            = "s3://${var.release_bucket}/dmp/cli.py"
      entryPointArguments   = ["identity", "--date", "{{ ds }}"]
      sparkSubmitParameters = "--py-files s3://${var.release_bucket}/dmp/jobs.zip --jars s3://${var.release_bucket}/dmp/jars/ --conf spark.sql.shuffle.partitions=200"
    }
  }
}
