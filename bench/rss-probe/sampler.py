import os, sys, time, json
pid, mp, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.time()
with open(out, 'w') as f:
    while True:
        try:
            st = open(f'/proc/{pid}/status').read()
        except FileNotFoundError:
            break
        d = {}
        for line in st.splitlines():
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile'):
                d[k] = int(v.split()[0]) // 1024
        try:
            s = json.loads(os.getxattr(mp, 'user.smhfs.stats'))
            m = s.get('memory', {})
            c = s.get('cache', {})
            d['heap'] = round(m.get('heapTotal', 0) / 2**20, 1)
            d['ab'] = round(m.get('arrayBuffers', 0) / 2**20, 1)
            ma = m.get('malloc') or {}
            d['mal'] = round(ma.get('arena', 0) / 2**20, 1)
            d['buf'] = round(c.get('bufferBytes', 0) / 2**20, 1)
            d['infl'] = round(c.get('inflightBytes', 0) / 2**20, 1)
            d['held'] = round(c.get('heldBytes', 0) / 2**20, 1)
        except Exception as e:
            pass
        print(round(time.time() - t0, 2), json.dumps(d), file=f, flush=True)
        time.sleep(0.25)
