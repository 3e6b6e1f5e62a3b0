/*
 * rusage COMMAND [ARG...]: run COMMAND and print, on stderr after its own output, its
 * wall time and the CPU time (user + system) it and its threads used, in milliseconds:
 * `<wall> <cpu>`. The CPU time is what a loaded machine changes least: `npm run bench` takes
 * start-up and the small extract on tmpfs in both. Exits with COMMAND's status.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double ms(struct timeval t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rusage COMMAND [ARG...]\n");
    return 2;
  }
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("wait4");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  fprintf(stderr, "%.3f %.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6, ms(ru.ru_utime) + ms(ru.ru_stime));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
