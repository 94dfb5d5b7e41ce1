#!/bin/sh
# Creates the Kinesis stream the compose workers read and waits until it is
# ACTIVE; does nothing if it exists. Run by the `init` service of
# docker-compose.yml (AWS CLI image) against whatever the standard variables
# name: AWS_ENDPOINT_URL (LocalStack), AWS_REGION, AWS_ACCESS_KEY_ID, ...
#
#   STREAM_NAME   stream to create (default demo-orders)
#   SHARDS        its shard count (default 4)
set -eu
STREAM_NAME=${STREAM_NAME:-demo-orders}
SHARDS=${SHARDS:-4}

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
