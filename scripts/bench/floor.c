/*
 * The syscall floor of an extract: the same mkdir, link and write-then-rename calls as the
 * output needs, replayed from a file of operations in C, with no checks. One operation a
 * line, fields separated by tabs:
 *   d PATH             mkdir(PATH)
 *   l EXISTING NEW     link(EXISTING, NEW)
 *   f PATH CONTENT     write CONTENT to PATH.tmp (O_CREAT|O_EXCL), close, rename to PATH
 * Prints {"seconds": ...} for the operations alone (the file read and parsed before).
 * Built by `npm run bench` with cc; see docs/performance.md.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what, const char *path) {
  perror(what);
  fprintf(stderr, "%s\n", path);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: floor OPS-FILE\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) fail("open", argv[1]);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(size + 1);
  if (buf == NULL || fread(buf, 1, size, f) != (size_t)size) fail("read", argv[1]);
  buf[size] = '\0';
  fclose(f);

  /* Split into lines and fields first, so that only the syscalls are timed. */
  size_t n = 0, cap = 1024;
  char **ops = malloc(cap * 3 * sizeof(char *));
  char *kinds = malloc(cap);
  for (char *line = buf; *line != '\0';) {
    char *end = strchr(line, '\n');
    if (end == NULL) end = line + strlen(line);
    char *next = *end == '\0' ? end : end + 1;
    *end = '\0';
    if (n == cap) {
      cap *= 2;
      ops = realloc(ops, cap * 3 * sizeof(char *));
      kinds = realloc(kinds, cap);
    }
    kinds[n] = line[0];
    char *a = line + 2, *b = NULL;
    char *tab = strchr(a, '\t');
    if (tab != NULL) {
      *tab = '\0';
      b = tab + 1;
    }
    ops[3 * n] = a;
    ops[3 * n + 1] = b;
    n++;
    line = next;
  }

  char tmp[4096];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t i = 0; i < n; i++) {
    char *a = ops[3 * i], *b = ops[3 * i + 1];
    switch (kinds[i]) {
      case 'd':
        if (mkdir(a, 0755) != 0) fail("mkdir", a);
        break;
      case 'l':
        if (link(a, b) != 0) fail("link", b);
        break;
      case 'f': {
        snprintf(tmp, sizeof tmp, "%s.tmp", a);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) fail("open", tmp);
        size_t len = strlen(b);
        if (write(fd, b, len) != (ssize_t)len) fail("write", tmp);
        if (close(fd) != 0) fail("close", tmp);
        if (rename(tmp, a) != 0) fail("rename", a);
        break;
      }
      default:
        fprintf(stderr, "bad operation %c\n", kinds[i]);
        return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("{\"seconds\": %.6f}\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
