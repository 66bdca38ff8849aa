// flotilla-shim internals (see proto/shim/PROTOCOL.md and README.md).
#ifndef FLOTILLA_SHIM_H
#define FLOTILLA_SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PATH_MAX_LOG 4200

struct config {
	const char *id, *bundle, *state_dir, *runtime, *runtime_base, *runtime_root, *log_path;
	bool terminal, stdin_, stdin_once, start_via_runtime;
	size_t line_size;
	long timeout_ms;
	// --runtime-fd: the runtime is exec'd from this inherited fd (a sealed
	// copy of the binary, see PROTOCOL.md) as runtime_exec, "/proc/self/fd/N";
	// argv[0] stays runtime.
	int runtime_fd;
	char runtime_exec[32];
};
extern struct config cfg;

// shim.c
int64_t now_ns(int clock);
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_all(int fd, const void *p, size_t n);
void set_nonblock(int fd);
int write_file_atomic(const char *name, const char *data, size_t n, bool sync);
void one_line(char *s);
void vwrite_line(int fd, const char *fmt, va_list ap);

// runtime.c: runtime calls
struct rcall {
	pid_t pid;      // 0: none running
	int seq;        // runtime-<seq>.log
	const char *cmd;
	int64_t deadline; // CLOCK_MONOTONIC ns, 0 none
	bool killed;    // SIGKILLed at the deadline
	bool done;
	int code;       // exit code (128+sig)
};
int rt_spawn(struct rcall *rc, const char *cmd, const char *const *args, int in, int out, int err);
// rt_result returns NULL on success, else a malloc'd error text; removes the log.
char *rt_result(struct rcall *rc);
// rt_run_sync runs a call to its end (start-up and failure paths only).
char *rt_run_sync(const char *cmd, const char *const *args);
bool rt_reaped(pid_t pid, int code);
int64_t rt_deadlines(int64_t now);

// exec.c: `flotilla-shim exec` (ExecSync without the runtime)
int exec_main(void);
int rro_main(int n, char **args);

// loop.c
const char *setup_loop(void);
const char *open_log(void);
const char *setup_io(void);
char *run_create(void);
void cleanup_after_failed_create(void);
void cleanup_files(bool failed);
int run_loop(void);
// reap_children reaps every exited child, dispatching to runtime calls and the init.
void reap_children(void);
extern int sig_fd;

#endif
