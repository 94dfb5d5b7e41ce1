#!/bin/sh
# Creates the Kinesis stream the compose workers read and waits until it is
# ACTIVE, and the S3 bucket their lake sink writes to; creates neither if it
# exists. Run by the `init` service of
# docker-compose.yml (AWS CLI image) against whatever the standard variables
# name: AWS_ENDPOINT_URL (LocalStack), AWS_REGION, AWS_ACCESS_KEY_ID, ...
#
#   STREAM_NAME   stream to create (default demo-orders)
#   SHARDS        its shard count (default 4)
#   LAKE_BUCKET   bucket to create (default demo-lake); the worker config's s3
#                 sink names the same through the worker's LAKE_BUCKET
set -eu
STREAM_NAME=${STREAM_NAME:-demo-orders}
SHARDS=${SHARDS:-4}
LAKE_BUCKET=${LAKE_BUCKET:-demo-lake}

# LocalStack answers at a host name (localstack), which has no subdomain per
# bucket: address buckets by path, as the worker does (force_path_style).
aws configure set default.s3.addressing_style path
if aws s3api head-bucket --bucket "$LAKE_BUCKET" >/dev/null 2>&1; then
	echo "init: bucket $LAKE_BUCKET exists"
else
	echo "init: creating bucket $LAKE_BUCKET"
	# Outside us-east-1 S3 wants the region named again.
	if [ "${AWS_REGION:-us-east-1}" = us-east-1 ]; then
		aws s3api create-bucket --bucket "$LAKE_BUCKET" >/dev/null
	else
		aws s3api create-bucket --bucket "$LAKE_BUCKET" --create-bucket-configuration "LocationConstraint=$AWS_REGION" >/dev/null
	fi
fi

status() {
	aws kinesis describe-stream-summary --stream-name "$STREAM_NAME" \
		--query StreamDescriptionSummary.StreamStatus --output text 2>/dev/null
}

if [ -n "$(status || true)" ]; then
	echo "init: stream $STREAM_NAME exists"
else
	echo "init: creating stream $STREAM_NAME with $SHARDS shards"
	aws kinesis create-stream --stream-name "$STREAM_NAME" --shard-count "$SHARDS"
fi
i=0
while [ "$(status || true)" != ACTIVE ]; do
	i=$((i + 1))
	if [ "$i" -gt 120 ]; then
		echo "init: stream $STREAM_NAME not ACTIVE after 60s" >&2
		exit 1
	fi
	sleep 0.5
done
arn=$(aws kinesis describe-stream-summary --stream-name "$STREAM_NAME" \
	--query StreamDescriptionSummary.StreamARN --output text)
echo "init: stream $arn is ACTIVE"
