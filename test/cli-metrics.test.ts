// --metrics (src/cli/metrics.ts): the page cache's counters as Prometheus counters, each read
// from stats() at scrape time — the unit counters of random readers included.
import t from 'tap';
import { Metrics } from '../src/cli/metrics.js';
import type { PageCacheStats } from '../src/blob/page-cache.js';

t.test('page-cache counters come from stats(), unit fetches and reused unit bytes included', async (t) => {
  const m = new Metrics('mount');
  const stats = {
    hits: 1,
    misses: 2,
    bytesFetched: 3,
    prefetches: 4,
    prefetchHits: 5,
    retries: 6,
    errors: 7,
    unitFetches: 8,
    unitBytesReused: 9 * 65536,
    toRandom: 10,
  } as Partial<PageCacheStats> as PageCacheStats;
  m.setSources({ cache: () => stats });
  const text = await m.registry.metrics();
  const value = (name: string): number | undefined => {
    const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return line ? Number(line[1]) : undefined;
  };
  t.equal(value('smhfs_cache_unit_fetches_total'), 8);
  t.equal(value('smhfs_cache_unit_bytes_reused_total'), 9 * 65536);
  t.match(text, /^# TYPE smhfs_cache_unit_bytes_reused_total counter$/m);
  t.equal(value('smhfs_cache_hits_total'), 1);
  t.equal(value('smhfs_cache_random_streams_total'), 10);
  stats.unitBytesReused += 65536;
  t.equal(Number(/^smhfs_cache_unit_bytes_reused_total (\S+)$/m.exec(await m.registry.metrics())![1]), 10 * 65536, 'read again at each scrape');
  m.setSources({ cache: () => undefined });
  t.equal(Number(/^smhfs_cache_unit_bytes_reused_total (\S+)$/m.exec(await m.registry.metrics())![1]), 0, 'no cache: 0');
});
