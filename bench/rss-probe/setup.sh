#!/bin/bash
# s3rver + a 4 GiB S3 library for the RSS harness
set -e
T=${T:-$(pwd)/.tmp}
cd "$(dirname "$0")/../.."
mkdir -p $T/s3 $T/mnt
nohup node dist/bench/s3rver-main.js $T/s3 bench > $T/s3rver.log 2>&1 &
echo $! > $T/s3rver.pid
sleep 3
EP=$(grep -o 'endpoint \S*' $T/s3rver.log | cut -d' ' -f2)
echo $EP > $T/endpoint
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
[ -f $T/big.bin ] || head -c 4G /dev/urandom > $T/big.bin
node dist/src/cli/main.js --library $T/lib --blobs s3://bench/rss --s3-endpoint $EP --s3-path-style init
node dist/src/cli/main.js --library $T/lib put $T/big.bin rss.bin
ls -la $T/lib
