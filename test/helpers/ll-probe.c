/*
 * ll-probe: single system calls the binding tests need and no common program makes exactly —
 * renameat2 flags, getxattr/listxattr with a given buffer size (size probes, ERANGE), utimensat
 * with UTIME_OMIT/UTIME_NOW, copy_file_range, SEEK_DATA/SEEK_HOLE, fsync of a directory.
 * Compiled by test/helpers/ll.ts at test time. Prints the result, or the errno name and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static int fail(void) {
  const char *n = strerrorname_np(errno);
  printf("%s\n", n ? n : "EUNKNOWN");
  return 1;
}

static long nsec_arg(const char *s) {
  if (strcmp(s, "omit") == 0) return UTIME_OMIT;
  if (strcmp(s, "now") == 0) return UTIME_NOW;
  return atol(s);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *cmd = argv[1];
  if (strcmp(cmd, "renameat2") == 0 && argc == 5) {
    if (renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], (unsigned)atoi(argv[4])) != 0) return fail();
    printf("OK\n");
  } else if (strcmp(cmd, "getxattr") == 0 && argc == 5) {
    size_t size = (size_t)atol(argv[4]);
    char *buf = malloc(size + 1);
    ssize_t n = getxattr(argv[2], argv[3], size ? buf : NULL, size);
    if (n < 0) return fail();
    if (size) printf("%zd:%.*s\n", n, (int)n, buf);
    else printf("%zd\n", n);
  } else if (strcmp(cmd, "listxattr") == 0 && argc == 4) {
    size_t size = (size_t)atol(argv[3]);
    char *buf = malloc(size + 1);
    ssize_t n = listxattr(argv[2], size ? buf : NULL, size);
    if (n < 0) return fail();
    printf("%zd", n);
    if (size) {
      printf(":");
      for (ssize_t i = 0; i < n; i++) putchar(buf[i] ? buf[i] : ',');
    }
    printf("\n");
  } else if (strcmp(cmd, "setxattr") == 0 && argc == 6) {
    if (setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), atoi(argv[5])) != 0) return fail();
    printf("OK\n");
  } else if (strcmp(cmd, "removexattr") == 0 && argc == 4) {
    if (removexattr(argv[2], argv[3]) != 0) return fail();
    printf("OK\n");
  } else if (strcmp(cmd, "utimens") == 0 && argc == 7) {
    struct timespec ts[2] = {{atol(argv[3]), nsec_arg(argv[4])}, {atol(argv[5]), nsec_arg(argv[6])}};
    if (utimensat(AT_FDCWD, argv[2], ts, 0) != 0) return fail();
    printf("OK\n");
  } else if (strcmp(cmd, "copy") == 0 && argc == 5) {
    int in = open(argv[2], O_RDONLY), out = open(argv[3], O_WRONLY | O_CREAT, 0644);
    if (in < 0 || out < 0) return fail();
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)atol(argv[4]), 0);
    if (n < 0) return fail();
    printf("%zd\n", n);
  } else if (strcmp(cmd, "seek") == 0 && argc == 5) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return fail();
    off_t r = lseek(fd, atol(argv[3]), strcmp(argv[4], "data") == 0 ? SEEK_DATA : SEEK_HOLE);
    if (r < 0) return fail();
    printf("%lld\n", (long long)r);
  } else if (strcmp(cmd, "fsyncdir") == 0 && argc == 3) {
    int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) return fail();
    printf("OK\n");
  } else {
    fprintf(stderr, "ll-probe: unknown command\n");
    return 2;
  }
  return 0;
}
