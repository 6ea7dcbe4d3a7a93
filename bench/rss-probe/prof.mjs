// preload: sample every allocation site (garbage included) and write it at exit
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const s = new Session();
s.connect();
s.post('HeapProfiler.enable');
s.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.on('exit', () => {
  s.post('HeapProfiler.stopSampling', (err, r) => {
    if (!err) writeFileSync(`alloc-${process.pid}.heapprofile`, JSON.stringify(r.profile));
    else writeFileSync('alloc-err.txt', String(err));
  });
});
