import sys, json
for d in sys.argv[1:]:
    rows=[]
    for l in open(d+'/samples.txt'):
        t, j = l.split(' ',1); x=json.loads(j)
        if 'heap' in x: rows.append((float(t), x))
    marks=open(d+'/marks.txt').read().split()
    r=int(marks[marks.index('random')+3])//1024; m=int(marks[marks.index('mixed')+3])//1024
    print(d, 'mount-up', rows[0][1]['VmRSS'], 'heap', rows[0][1]['heap'], 'mal', rows[0][1]['mal'], '| peak random', r, 'mixed', m, '| max heap', max(x['heap'] for t,x in rows), 'max mal', max(x['mal'] for t,x in rows), 'max file', max(x['RssFile'] for t,x in rows), '| dd_s', marks[-1][:5])
