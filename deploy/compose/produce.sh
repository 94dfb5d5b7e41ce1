#!/bin/sh
# Writes sample orders to the compose stream with the AWS CLI (PutRecords),
# BATCH records every INTERVAL seconds, forever or until COUNT records (if
# COUNT > 0). About 1 in 10 is bad on purpose, so that the dead letters have
# something in them: every 20th record has a string amount (schema_error) and
# every 20th (another one) is cut short (decode_error). The rest become rows.
# Run by the `producer` service of docker-compose.yml against whatever the
# standard variables name (AWS_ENDPOINT_URL, AWS_REGION, ...).
#
#   STREAM_NAME   stream to write to (default demo-orders)
#   BATCH         records per PutRecords call (default 20)
#   INTERVAL      seconds between calls (default 1)
#   COUNT         stop after this many records; 0 runs forever (default 0)
set -eu
STREAM_NAME=${STREAM_NAME:-demo-orders}
BATCH=${BATCH:-20}
INTERVAL=${INTERVAL:-1}
COUNT=${COUNT:-0}

# A record's Data is a blob: AWS CLI v2 reads blobs in --cli-input-json as
# base64, v1 as the raw string (JSON-escaped).
case "$(aws --version 2>&1)" in
aws-cli/1.*) encode() { sed 's/\\/\\\\/g; s/"/\\"/g'; } ;;
*) encode() { base64 | tr -d '\n'; } ;;
esac

batch=$(mktemp)
trap 'rm -f "$batch"' EXIT
i=0
while [ "$COUNT" -le 0 ] || [ "$i" -lt "$COUNT" ]; do
	ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	records=
	n=0
	while [ "$n" -lt "$BATCH" ] && { [ "$COUNT" -le 0 ] || [ "$i" -lt "$COUNT" ]; }; do
		i=$((i + 1))
		n=$((n + 1))
		amount=$(printf '%d.%02d' $((i * 37 % 500)) $((i % 100)))
		case $((i % 20)) in
		7) data="{\"id\": $i, \"amount\": \"$amount EUR\", \"ts\": \"$ts\"}" ;;
		13) data="{\"id\": $i, \"amount\": $amount, \"ts\": \"$ts\"" ;;
		*) data="{\"id\": $i, \"amount\": $amount, \"ts\": \"$ts\", \"note\": null}" ;;
		esac
		records="$records${records:+,}{\"Data\": \"$(printf '%s' "$data" | encode)\", \"PartitionKey\": \"order-$i\"}"
	done
	printf '{"StreamName": "%s", "Records": [%s]}\n' "$STREAM_NAME" "$records" >"$batch"
	failed=$(aws kinesis put-records --cli-input-json "file://$batch" \
		--query FailedRecordCount --output text)
	echo "producer: put $n records (up to id $i), $failed failed"
	sleep "$INTERVAL"
done
