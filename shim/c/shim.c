// flotilla-shim: one small process per container (see proto/shim/PROTOCOL.md).
// C11 + glibc, no other libraries, one epoll loop, no threads.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

struct config cfg = {.line_size = 16384, .timeout_ms = 60000, .runtime_fd = -1};

// ---- small helpers ----

int64_t now_ns(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void logmsg(const char *fmt, ...)
{
	char buf[1024];
	int64_t t = now_ns(CLOCK_REALTIME);
	time_t s = (time_t)(t / 1000000000LL);
	struct tm tm;
	gmtime_r(&s, &tm);
	int n = (int)strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t r = write(2, buf, (size_t)n);
	(void)r;
}

// write_all writes to a blocking fd (files).
int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// write_file_atomic writes name in the cwd (the state dir) through a temp
// file and a rename.
int write_file_atomic(const char *name, const char *data, size_t n, bool sync)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, n) < 0 || (sync && fsync(fd) < 0)) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	close(fd);
	if (rename(tmp, name) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

// one_line replaces line breaks so that s fits in one protocol line.
void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

// vwrite_line writes the formatted text to fd as exactly one line (line
// breaks inside become blanks, a final one is added when missing).
void vwrite_line(int fd, const char *fmt, va_list ap)
{
	char buf[4096];
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n] = 0;
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	one_line(buf);
	buf[n++] = '\n';
	write_all(fd, buf, (size_t)n);
}

// ---- arguments ----

static int sync_fd = 3;

static void sync_line(const char *fmt, ...)
{
	if (sync_fd < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vwrite_line(sync_fd, fmt, ap);
	va_end(ap);
	close(sync_fd);
	sync_fd = -1;
}

static void __attribute__((noreturn)) usage_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sync_line("error %s\n", buf);
	exit(2);
}

static bool parse_bool(const char *flag, const char *v)
{
	if (!v || !strcmp(v, "true") || !strcmp(v, "1"))
		return true;
	if (!strcmp(v, "false") || !strcmp(v, "0"))
		return false;
	usage_error("bad value %s for --%s", v, flag);
}

static long parse_num(const char *flag, const char *v, long min)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min)
		usage_error("bad value %s for --%s", v, flag);
	return n;
}

static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *e = strchr(path, ':');
		size_t l = e ? (size_t)(e - path) : strlen(path);
		char buf[PATH_MAX];
		if (l > 0 && l + strlen(name) + 2 < sizeof buf) {
			memcpy(buf, path, l);
			buf[l] = '/';
			strcpy(buf + l + 1, name);
			if (access(buf, X_OK) == 0 && buf[0] == '/')
				return strdup(buf);
		}
		if (!e)
			break;
		path = e + 1;
	}
	return NULL;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strncmp(a, "--", 2) != 0)
			usage_error("unexpected argument %s", a);
		a += 2;
		char *val = strchr(a, '=');
		size_t nl = val ? (size_t)(val - a) : strlen(a);
		if (val)
			val++;
		static const char *const strflags[] = {"id", "bundle", "state-dir", "runtime", "runtime-root",
						       "log-path", "log-line-size", "timeout-ms", "runtime-fd"};
		static const char *const boolflags[] = {"terminal", "stdin", "stdin-once", "start-via-runtime"};
		int sf = -1, bf = -1;
		for (int k = 0; k < (int)(sizeof strflags / sizeof *strflags); k++)
			if (strlen(strflags[k]) == nl && !strncmp(a, strflags[k], nl))
				sf = k;
		for (int k = 0; k < (int)(sizeof boolflags / sizeof *boolflags); k++)
			if (strlen(boolflags[k]) == nl && !strncmp(a, boolflags[k], nl))
				bf = k;
		if (bf >= 0) {
			bool b = parse_bool(boolflags[bf], val);
			if (bf == 0)
				cfg.terminal = b;
			else if (bf == 1)
				cfg.stdin_ = b;
			else if (bf == 2)
				cfg.stdin_once = b;
			else
				cfg.start_via_runtime = b;
			continue;
		}
		if (sf < 0)
			usage_error("unknown flag --%.*s", (int)nl, a);
		if (!val) {
			if (i + 1 >= argc)
				usage_error("flag --%s needs a value", strflags[sf]);
			val = argv[++i];
		}
		switch (sf) {
		case 0: cfg.id = val; break;
		case 1: cfg.bundle = val; break;
		case 2: cfg.state_dir = val; break;
		case 3: cfg.runtime = val; break;
		case 4: cfg.runtime_root = val; break;
		case 5: cfg.log_path = val; break;
		case 6: // like bufio's minimum: smaller sizes are raised to 16
			cfg.line_size = (size_t)parse_num("log-line-size", val, 0);
			if (cfg.line_size < 16)
				cfg.line_size = 16;
			break;
		case 7: cfg.timeout_ms = parse_num("timeout-ms", val, 1); break;
		case 8: cfg.runtime_fd = (int)parse_num("runtime-fd", val, 4); break;
		}
	}
	if (!cfg.id || !*cfg.id)
		usage_error("--id is required");
	if (!cfg.bundle || cfg.bundle[0] != '/')
		usage_error("--bundle must be an absolute path");
	if (!cfg.state_dir || cfg.state_dir[0] != '/')
		usage_error("--state-dir must be an absolute path");
	if (cfg.log_path && *cfg.log_path && cfg.log_path[0] != '/')
		usage_error("--log-path must be an absolute path");
	if (cfg.log_path && !*cfg.log_path)
		cfg.log_path = NULL;
	if (cfg.runtime_root && !*cfg.runtime_root)
		cfg.runtime_root = NULL;
	if (!cfg.runtime || !*cfg.runtime)
		usage_error("--runtime is required");
	if (cfg.stdin_once && !cfg.stdin_)
		usage_error("--stdin-once needs --stdin");
	if (cfg.line_size > (64u << 20))
		usage_error("--log-line-size %zu is too large", cfg.line_size);
	if (cfg.runtime[0] != '/') {
		char *p = strchr(cfg.runtime, '/') ? realpath(cfg.runtime, NULL) : find_in_path(cfg.runtime);
		if (!p)
			usage_error("runtime %s not found", cfg.runtime);
		cfg.runtime = p;
	}
	const char *b = strrchr(cfg.runtime, '/');
	cfg.runtime_base = b ? b + 1 : cfg.runtime;
	if (cfg.runtime_fd >= 0) {
		struct stat st;
		if (fstat(cfg.runtime_fd, &st) < 0 || !S_ISREG(st.st_mode))
			usage_error("--runtime-fd %d is not an open regular file", cfg.runtime_fd);
		snprintf(cfg.runtime_exec, sizeof cfg.runtime_exec, "/proc/self/fd/%d", cfg.runtime_fd);
	}
}

// ---- start-up ----

static bool shim_alive(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static void fail_startup(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	one_line(buf);
	logmsg("start-up failed: %s", buf);
	cleanup_files(true);
	sync_line("error %s\n", buf);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "exec"))
		return exec_main();
	if (argc >= 3 && !strcmp(argv[1], "rro"))
		return rro_main(argc - 2, argv + 2);
	// fd 3 is the sync pipe: never let it reach the runtime or the container
	if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0)
		sync_fd = -1;
	parse_args(argc, argv);

	if (chdir(cfg.state_dir) < 0)
		usage_error("state dir %s: %s", cfg.state_dir, strerror(errno));
	int lfd = open("shim.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		usage_error("open %s/shim.log: %s", cfg.state_dir, strerror(errno));
	if (lfd != 2) {
		dup2(lfd, 2); // stderr must survive exec? no: it is only ours
		close(lfd);
	}
	fcntl(2, F_SETFD, FD_CLOEXEC);
	// no other inherited fd may leak to the container; the runtime's fd
	// stays open in the shim only (close-on-exec: exec'ing /proc/self/fd/N
	// resolves it before the fds are closed)
	if (cfg.runtime_fd >= 0) {
		if (cfg.runtime_fd > 4)
			close_range(4, cfg.runtime_fd - 1, 0);
		close_range(cfg.runtime_fd + 1, ~0U, 0);
		fcntl(cfg.runtime_fd, F_SETFD, FD_CLOEXEC);
	} else {
		close_range(4, ~0U, 0);
	}

	pid_t pid = fork();
	if (pid < 0) {
		sync_line("error fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		logmsg("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));

	// a live shim on this state dir keeps it: touch none of its files
	if (shim_alive("shim.sock")) {
		logmsg("state dir %s is in use by a running shim", cfg.state_dir);
		sync_line("error state dir %s is in use by a running shim\n", cfg.state_dir);
		exit(1);
	}
	const char *err = setup_loop();
	if (err)
		fail_startup("%s", err);
	unlink("exit");
	char pidbuf[32];
	int n = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
	if (write_file_atomic("shim.pid", pidbuf, (size_t)n, false) < 0)
		fail_startup("write shim.pid: %s", strerror(errno));
	if ((err = open_log()))
		fail_startup("%s", err);
	if ((err = setup_io()))
		fail_startup("%s", err);

	char *cerr = run_create();
	if (cerr) {
		logmsg("create failed: %s", cerr);
		cleanup_after_failed_create();
		sync_line("error %s\n", cerr);
		exit(1);
	}
	sync_line("ok\n");
	return run_loop();
}
