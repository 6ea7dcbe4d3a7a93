/**
 * What every operation of a space shares: its context (name, root, bin, rows, host), read-only
 * resolution (`tree`), the shared mutations (`edits`), and `tx`, one write transaction of the
 * engine whose times are one instant (`freeing`: a delete, which may use the library's reserve
 * space on a full disk, D9).
 */
import type { Edits } from '../edits.js';
import { nowUs } from '../engine.js';
import type { OpClock, SpaceCtx, SpaceHost, SpaceRows } from '../space-rows.js';
import type { Tree } from '../tree.js';

export abstract class SpaceOps {
  readonly name: string;
  readonly root: number;
  readonly trash: number;
  protected readonly rows: SpaceRows;
  protected readonly host: SpaceHost;
  protected readonly tree: Tree;
  protected readonly edits: Edits;
  private readonly clock: OpClock;

  constructor(ctx: SpaceCtx, tree: Tree, edits: Edits) {
    this.name = ctx.name;
    this.root = ctx.root;
    this.trash = ctx.trash;
    this.rows = ctx.rows;
    this.host = ctx.host;
    this.tree = tree;
    this.edits = edits;
    this.clock = ctx.clock;
  }

  /** One transaction whose times are one instant (see `OpClock`). */
  protected tx<T>(fn: () => T, durable = false, freeing = false): T {
    return this.host.engine.transaction(() => {
      const outer = this.clock.time;
      this.clock.time ??= nowUs();
      try {
        return fn();
      } finally {
        this.clock.time = outer;
      }
    }, { durable, freeing });
  }
}
