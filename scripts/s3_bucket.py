"""Makes the bucket PULP_S3_BUCKET at PULP_S3_ENDPOINT unless it exists (run.sh, s3 storage)."""

import os
import sys

import boto3
from botocore.exceptions import ClientError

e = os.environ
client = boto3.client(
    "s3",
    endpoint_url=e["PULP_S3_ENDPOINT"],
    aws_access_key_id=e["PULP_S3_ACCESS_KEY"],
    aws_secret_access_key=e["PULP_S3_SECRET_KEY"],
    region_name=e["PULP_S3_REGION"],
)
try:
    client.head_bucket(Bucket=e["PULP_S3_BUCKET"])
except ClientError as error:
    if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
        sys.exit(f"bucket {e['PULP_S3_BUCKET']} at {e['PULP_S3_ENDPOINT']}: {error}")
    client.create_bucket(Bucket=e["PULP_S3_BUCKET"])
    print(f"created bucket {e['PULP_S3_BUCKET']} at {e['PULP_S3_ENDPOINT']}")
