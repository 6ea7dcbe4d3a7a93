# The POSIX suite's syscall driver: one process per caller identity (root, or a throw-away uid
# through setpriv), run by test/posix/caller.ts. It reads one JSON request per line on stdin,
# {"id": n, "op": "open", "args": [...]}, makes exactly that one system call and answers one
# line on stdout: {"id": n, "ok": value} or {"id": n, "errno": "ENOENT"}.
#
# Why a separate process: the process serving a FUSE mount must never make blocking calls on its
# own mountpoint (M4), and the suite must see the file system the way any program does, through
# the kernel. Why python3: its `os` module is a thin layer over almost every syscall, and ctypes
# reaches the rest (renameat2, utimensat with UTIME_NOW/UTIME_OMIT, getxattr/listxattr with an
# exact buffer size for ERANGE, fallocate modes, access(2) with its errno).
#
# Like pjdfstest's fstest, the process starts with umask 0 so modes are what the case asks for.
import ctypes
import ctypes.util
import errno
import fcntl
import json
import mmap
import os
import stat
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_FLAGS = {"RENAME_NOREPLACE": 1, "RENAME_EXCHANGE": 2, "RENAME_WHITEOUT": 4}
FALLOC_FLAGS = {"FALLOC_FL_KEEP_SIZE": 1, "FALLOC_FL_PUNCH_HOLE": 2, "FALLOC_FL_ZERO_RANGE": 0x10}


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.lgetxattr.argtypes = libc.getxattr.argtypes
libc.lgetxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.faccessat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]


def errno_name(code):
    # Linux gives EOPNOTSUPP and ENOTSUP one number; man pages (and cases) say EOPNOTSUPP
    if code == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(code, str(code))


class SysError(Exception):
    def __init__(self, code):
        self.code = code


def check(r):
    if r < 0:
        raise SysError(ctypes.get_errno())
    return r


def b(path):
    return os.fsencode(path)


def flags_of(names):
    v = 0
    for n in names:
        v |= getattr(os, n)
    return v


def stat_dict(st):
    return {
        "mode": st.st_mode,
        "type": stat.S_IFMT(st.st_mode),
        "perm": stat.S_IMODE(st.st_mode),
        "ino": st.st_ino,
        "nlink": st.st_nlink,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "rdev": st.st_rdev,
        "blocks": st.st_blocks,
        # strings: nanoseconds since the epoch do not fit a JSON number read as a double
        "atime": str(st.st_atime_ns),
        "mtime": str(st.st_mtime_ns),
        "ctime": str(st.st_ctime_ns),
    }


def time_spec(v):
    # nanoseconds (a decimal string), or "UTIME_NOW" / "UTIME_OMIT"
    if v == "UTIME_NOW":
        return Timespec(0, UTIME_NOW)
    if v == "UTIME_OMIT":
        return Timespec(0, UTIME_OMIT)
    return Timespec(int(v) // 1_000_000_000, int(v) % 1_000_000_000)


def op_utimensat(path, atime, mtime, nofollow=False):
    ts = (Timespec * 2)(time_spec(atime), time_spec(mtime))
    check(libc.utimensat(AT_FDCWD, b(path), ts, AT_SYMLINK_NOFOLLOW if nofollow else 0))


def op_renameat2(src, dst, names):
    v = 0
    for n in names:
        v |= RENAME_FLAGS[n]
    check(libc.renameat2(AT_FDCWD, b(src), AT_FDCWD, b(dst), v))


def op_getxattr(path, name, size, nofollow=False):
    """getxattr(2) with exactly `size` bytes of buffer (0 = the size probe)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    fn = libc.lgetxattr if nofollow else libc.getxattr
    n = check(fn(b(path), name.encode(), buf if size > 0 else None, size))
    return n if size == 0 else buf.raw[:n].decode("latin-1")


def op_listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = check(libc.listxattr(b(path), buf if size > 0 else None, size))
    if size == 0:
        return n
    return sorted(x.decode() for x in buf.raw[:n].split(b"\0") if x)


def op_fallocate(fd, names, offset, length):
    v = 0
    for n in names:
        v |= FALLOC_FLAGS[n]
    check(libc.fallocate(fd, v, offset, length))


def op_access(path, mode_names):
    mode = 0
    for n in mode_names:
        mode |= getattr(os, n)
    check(libc.faccessat(AT_FDCWD, b(path), mode, 0))


def op_read(fd, n):
    return os.read(fd, n).decode("latin-1")


def op_pread(fd, n, off):
    return os.pread(fd, n, off).decode("latin-1")


def op_readdir(path):
    return sorted(os.listdir(path))


def op_open(path, names, mode=0o644):
    return os.open(path, flags_of(names), mode)


def op_mknod(path, kind, perm, dev=0):
    kinds = {"fifo": stat.S_IFIFO, "sock": stat.S_IFSOCK, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "reg": stat.S_IFREG}
    os.mknod(path, kinds[kind] | perm, dev)


def op_mmap_write(path, offset, data):
    """Write `data` at `offset` through a shared mapping of the whole file, msync, unmap, close."""
    fd = os.open(path, os.O_RDWR)
    try:
        m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            m[offset:offset + len(data)] = data.encode("latin-1")
            m.flush()
        finally:
            m.close()
    finally:
        os.close(fd)


def op_mmap_read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            return m[:].decode("latin-1")
        finally:
            m.close()
    finally:
        os.close(fd)


def op_lockf(fd, how, start, length):
    """fcntl(F_SETLK) byte-range locks: how is F_WRLCK, F_RDLCK or F_UNLCK; never waits."""
    kinds = {"F_WRLCK": fcntl.LOCK_EX, "F_RDLCK": fcntl.LOCK_SH, "F_UNLCK": fcntl.LOCK_UN}
    fcntl.lockf(fd, kinds[how] | (0 if how == "F_UNLCK" else fcntl.LOCK_NB), length, start, 0)


def op_flock(fd, how):
    kinds = {"LOCK_EX": fcntl.LOCK_EX, "LOCK_SH": fcntl.LOCK_SH, "LOCK_UN": fcntl.LOCK_UN}
    fcntl.flock(fd, kinds[how] | (0 if how == "LOCK_UN" else fcntl.LOCK_NB))


def op_statvfs(path):
    s = os.statvfs(path)
    return {"bsize": s.f_bsize, "frsize": s.f_frsize, "blocks": s.f_blocks, "bfree": s.f_bfree, "bavail": s.f_bavail,
            "files": s.f_files, "ffree": s.f_ffree, "favail": s.f_favail, "namemax": s.f_namemax}


def op_sleep(ms):
    time.sleep(ms / 1000)


OPS = {
    "open": op_open,
    "close": os.close,
    "read": op_read,
    "pread": op_pread,
    "write": lambda fd, data: os.write(fd, data.encode("latin-1")),
    "pwrite": lambda fd, data, off: os.pwrite(fd, data.encode("latin-1"), off),
    "lseek": os.lseek,
    "fsync": os.fsync,
    "fstat": lambda fd: stat_dict(os.fstat(fd)),
    "ftruncate": os.ftruncate,
    "fchmod": os.fchmod,
    "fchown": os.fchown,
    "futimens": lambda fd, atime, mtime: os.utime(fd, ns=(int(atime), int(mtime))),
    "stat": lambda path: stat_dict(os.stat(path)),
    "lstat": lambda path: stat_dict(os.lstat(path)),
    "mkdir": lambda path, mode: os.mkdir(path, mode),
    "rmdir": os.rmdir,
    "unlink": os.unlink,
    "rename": os.rename,
    "renameat2": op_renameat2,
    "link": lambda src, dst: os.link(src, dst, follow_symlinks=False),
    "symlink": os.symlink,
    "readlink": os.readlink,
    "chmod": lambda path, mode: os.chmod(path, mode),
    "chown": lambda path, uid, gid: os.chown(path, uid, gid),
    "lchown": os.lchown,
    "truncate": os.truncate,
    "utimensat": op_utimensat,
    "mknod": op_mknod,
    "mkfifo": lambda path, mode: os.mkfifo(path, mode),
    "posix_fallocate": os.posix_fallocate,
    "fallocate": op_fallocate,
    "getxattr": op_getxattr,
    "setxattr": lambda path, name, value, flags=0: os.setxattr(path, name, value.encode("latin-1"), flags),
    "listxattr": op_listxattr,
    "removexattr": os.removexattr,
    "statvfs": op_statvfs,
    "mmap_write": op_mmap_write,
    "mmap_read": op_mmap_read,
    "lockf": op_lockf,
    "flock": op_flock,
    "access": op_access,
    "readdir": op_readdir,
    "umask": os.umask,
    "sleep": op_sleep,
    "whoami": lambda: {"uid": os.geteuid(), "gid": os.getegid(), "groups": os.getgroups()},
}


def main():
    os.umask(0)
    for line in sys.stdin:
        req = json.loads(line)
        rid = req["id"]
        try:
            value = OPS[req["op"]](*req.get("args", []))
            out = {"id": rid, "ok": value}
        except SysError as e:
            out = {"id": rid, "errno": errno_name(e.code)}
        except OSError as e:
            out = {"id": rid, "errno": errno_name(e.errno) if e.errno else str(e)}
        except Exception as e:  # a bad request: the suite's own bug, reported as such
            out = {"id": rid, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


main()
