# Who may read and write what: the Spark jobs' role, and each ad platform on its own prefix.

data "aws_iam_policy_document" "audiences" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.dmp["audiences"].arn, "${aws_s3_bucket.dmp["audiences"].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = var.destinations
    content {
      sid       = "Read${replace(title(replace(statement.key, "_", " ")), " ", "")}Objects"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = ["${aws_s3_bucket.dmp["audiences"].arn}/${statement.key}/*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.principal_arn]
      }
    }
  }

  dynamic "statement" {
    for_each = var.destinations
    content {
      sid       = "List${replace(title(replace(statement.key, "_", " ")), " ", "")}Prefix"
      effect    = "Allow"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.dmp["audiences"].arn]
      principals {
        type        = "AWS"
        identifiers = [statement.value.principal_arn]
      }
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${statement.key}/*"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "audiences" {
  bucket     = aws_s3_bucket.dmp["audiences"].id
  policy     = data.aws_iam_policy_document.audiences.json
  depends_on = [aws_s3_bucket_public_access_block.dmp]
}

data "aws_iam_policy_document" "spark_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "spark_jobs" {
  name               = "open-dmp-${var.environment}-spark-jobs"
  assume_role_policy = data.aws_iam_policy_document.spark_assume.json
}

data "aws_iam_policy_document" "spark_jobs" {
  statement {
    sid     = "ReadRaw"
    actions = ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"] # erasure rewrites landing files
    resources = [aws_s3_bucket.dmp["raw"].arn, "${aws_s3_bucket.dmp["raw"].arn}/*"]
  }
  statement {
    sid       = "ReadWriteLakeAndAudiences"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:AbortMultipartUpload"]
    resources = [
      aws_s3_bucket.dmp["lake"].arn, "${aws_s3_bucket.dmp["lake"].arn}/*",
      aws_s3_bucket.dmp["audiences"].arn, "${aws_s3_bucket.dmp["audiences"].arn}/*",
    ]
  }
  statement {
    sid       = "ReadRelease"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.release_bucket}", "arn:aws:s3:::${var.release_bucket}/*"]
  }
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.dmp.arn]
  }
}

resource "aws_iam_role_policy" "spark_jobs" {
  name   = "open-dmp-data"
  role   = aws_iam_role.spark_jobs.id
  policy = data.aws_iam_policy_document.spark_jobs.json
}
