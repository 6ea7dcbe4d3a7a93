// SPEC S1: the bound-link counter suite (test/store-bound-links.test.ts), every test of it, on the
// PostgreSQL engine: each library a fresh database of one real cluster (fails, never skips, without one).
import t from 'tap';
import { usePostgresEngine } from './helpers/store-engines.js';

await usePostgresEngine(t);
await import('./store-bound-links.test.js');
