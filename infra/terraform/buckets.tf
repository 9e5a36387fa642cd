# Three buckets: raw landing zone, Delta lake, audiences read by the ad platforms.
# All encrypted with one customer-managed KMS key, versioned, never public.

resource "aws_kms_key" "dmp" {
  description             = "open-dmp ${var.environment} data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

locals {
  buckets = {
    raw       = "open-dmp-${var.environment}-raw"
    lake      = "open-dmp-${var.environment}-lake"
    audiences = "open-dmp-${var.environment}-audiences"
  }
}

resource "aws_s3_bucket" "dmp" {
  for_each = local.buckets
  bucket   = each.value
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dmp" {
  for_each = aws_s3_bucket.dmp
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dmp.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "dmp" {
  for_each                = aws_s3_bucket.dmp
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "dmp" {
  for_each = aws_s3_bucket.dmp
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "dmp" {
  for_each = aws_s3_bucket.dmp
  bucket   = each.value.id
  versioning_configuration {
    # the lake relies on Delta's own versions and VACUUM (erasure must really delete)
    status = each.key == "lake" ? "Suspended" : "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.dmp["raw"].id
  rule {
    id     = "expire-landing-files"
    status = "Enabled"
    filter {}
    expiration {
      days = var.raw_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1 # an erased line must not survive in an old object version
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.dmp["lake"].id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "audiences" {
  bucket = aws_s3_bucket.dmp["audiences"].id
  rule {
    id     = "expire-audience-folders"
    status = "Enabled"
    filter {}
    expiration {
      days = var.audience_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}
