/**
 * The seam between the mount server (./server.ts) and a FUSE binding: the server knows a binding
 * only through `Binding` — mount with these ops and options, say what you can do, tell me the
 * options you used — so a second binding is a second small file, not a fork of the server or the
 * adapter. Two implement it: our libfuse 3 low-level binding (./ll/binding.ts, inode-addressed,
 * served by ./inode-adapter.ts: the default on Linux) and fuse-native (libfuse 2, path-addressed,
 * served by ./adapter.ts: the fallback and the macOS binding). ./frontends.ts pairs each binding
 * with its adapter (native-notes/binding.md, native-notes/architecture.md).
 */

export type BindingName = 'll' | 'fuse-native';
export const BINDING_NAMES: readonly BindingName[] = ['ll', 'fuse-native'];

/** What a binding can tell the adapter, so the adapter never asks which binding it runs on. */
export interface BindingCapabilities {
  /** The caller's uid/gid/pid arrive with each request (ll); without them (fuse-native) a new node takes its parent's owner. */
  callerContext: boolean;
  /** Times cross with nanoseconds (ll); fuse-native passes milliseconds. */
  nanosecondTimes: boolean;
  /** The binding can tell the kernel to drop cached entries and attributes (ll); fuse-native relies on timeouts. */
  invalidation: boolean;
  /** rename(2) flags (RENAME_NOREPLACE, RENAME_EXCHANGE) reach the adapter. */
  renameFlags: boolean;
  /** The largest write request in bytes. */
  maxRequest: number;
}

export interface BindingMountOptions<Timeouts = unknown> {
  /** `-o` options, one per element, passed to libfuse after the binding's own. */
  mountOptions: string[];
  /** Seconds the kernel keeps attributes and names (H4). */
  attrTimeout: number;
  /** Per-op timeouts, where the binding has them (fuse-native). */
  timeouts?: Timeouts;
  debug: boolean;
}

/** A live mount made by a binding. Unmounting is the server's (./mounts.ts: fusermount/umount in a child). */
export interface MountedFs {
  readonly mountpoint: string;
  /** The option string handed to libfuse (for `smhfs stats` and logs). */
  optionString(): string;
  /** The kernel's caches, where the binding can invalidate them (`capabilities.invalidation`). */
  invalidateEntry?(parentIno: number, name: string): Promise<boolean>;
  invalidateInode?(ino: number, offset?: number, length?: number): Promise<boolean>;
}

export interface Binding<Ops, Timeouts = unknown> {
  readonly name: BindingName;
  readonly capabilities: BindingCapabilities;
  /** Whether the binding can be loaded here, and if not, why (in one line). */
  available(): { ok: true } | { ok: false; reason: string };
  /**
   * Mount `ops` at `mountpoint`. Throws at once (synchronously) for options the binding refuses
   * — nothing was mounted — and rejects when the kernel mount fails.
   */
  mount(mountpoint: string, ops: Ops, opts: BindingMountOptions<Timeouts>): Promise<MountedFs>;
}
