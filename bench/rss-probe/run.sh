#!/bin/bash
# usage: run.sh TAG [snap] -- one RSS round (random 4K+128K then dd of all) on the 4 GiB S3 library
T=${T:-$(pwd)/.tmp}
TAG=$1; SNAP=$2
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
MNT=$T/mnt
OUT=$T/out/$TAG; rm -rf $OUT; mkdir -p $OUT
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
rm -rf $T/lib/cache $T/lib/.cache 2>/dev/null
cd $OUT
node --max-semi-space-size=1 $NODEX $ROOT/dist/src/cli/main.js mount $MNT --library $T/lib --cache-size 256M > mount.log 2>&1 &
PID=$!
for i in $(seq 100); do mountpoint -q $MNT && break; sleep 0.2; done
python3 $ROOT/bench/rss-probe/sampler.py $PID $MNT samples.txt &
SP=$!
sleep 1
grep VmRSS /proc/$PID/status > marks.txt
[ -n "$SNAP" ] && { kill -USR2 $PID; sleep 4; }
for x in "4k 1300" "128k 2000"; do set -- $x
  fio --name=rss --filename=$MNT/rss.bin --rw=randread --bs=$1 --ioengine=psync --numjobs=2 --number_ios=$2 --readonly --output-format=json > fio-$1.json
done
echo "random HWM $(grep VmHWM /proc/$PID/status)" >> marks.txt
[ -n "$SNAP" ] && { kill -USR2 $PID; sleep 6; }
S=$(date +%s.%N)
dd if=$MNT/rss.bin of=/dev/null bs=1M status=none
E=$(date +%s.%N)
echo "mixed HWM $(grep VmHWM /proc/$PID/status) dd_s $(echo "$E - $S" | bc)" >> marks.txt
getfattr --only-values -n user.smhfs.stats $MNT > stats.json 2>/dev/null
[ -n "$SNAP" ] && { kill -USR2 $PID; sleep 6; }
fusermount3 -u $MNT
wait $PID
kill $SP 2>/dev/null
cat marks.txt
python3 -c "import json;d=json.load(open('fio-4k.json'));print('4k iops',round(sum(j['read']['iops'] for j in d['jobs'])))"
