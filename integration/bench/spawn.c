/* spawn: run one command and report what it cost.
 *
 *     spawn PROGRAM ARG...
 *
 * Runs PROGRAM (an absolute path) with stdin from our stdin and both stdout
 * and stderr to our stderr, waits for it with wait4, and writes one line to
 * our stdout:
 *
 *     EXIT_CODE WALL_NS USER_US SYS_US MAXRSS_KIB
 *
 * (EXIT_CODE is 128+N if killed by signal N.)  CPU time and peak RSS are
 * those wait4 returns for the child: the child plus every descendant it
 * waited for.
 *
 * Why not measure from Python directly: a child's ru_maxrss includes the
 * resident size of the memory it was forked (or vforked) from, recorded when
 * it calls exec.  Forked from the Python driver (about 17 MB) every runtime
 * would show at least that.  This helper is small and static, so the floor it
 * leaves is its own resident size, well under a megabyte.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv, char **envp) {
    if (argc < 2) {
        fputs("usage: spawn PROGRAM ARG...\n", stderr);
        return 2;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, 2, 1);

    long long start = now_ns();
    pid_t pid;
    int err = posix_spawn(&pid, argv[1], &actions, NULL, argv + 1, envp);
    if (err != 0) {
        printf("127 0 0 0 0\n");
        return 0;
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("spawn: wait4");
        return 2;
    }
    long long wall = now_ns() - start;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%d %lld %lld %lld %ld\n", code, wall,
           (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
           ru.ru_maxrss);
    return 0;
}
