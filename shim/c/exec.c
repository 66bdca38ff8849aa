// exec.c: `flotilla-shim exec`, ExecSync's fast path (proto/shim/PROTOCOL.md, "exec").
//
// Runs one process in a running container the way `runc exec` would, without
// runc's two Go start-ups: join the container's cgroups and (through a pidfd
// of its init) all its namespaces at once, fork, set up the process as runc's
// setns init does (rlimits, no_new_privs, seccomp, bounding set, user and
// groups, capabilities, cwd) and execve. The caller (shim/client) builds the
// plan from the container's spec and falls back to `runc exec` for anything
// it does not cover, and whenever this reports `error` (nothing ran then).
//
// fd 3: the plan, NUL-terminated key=value records (read to EOF).
// fd 4: the status: "started PID\n" once the command runs (PID is the host
//       pid), or "error TEXT\n" when nothing was started.
// stdin, stdout, stderr are the process's. The exit status is the process's
// (128+signal when it was killed); 255 with `error`.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

#define PLAN_FD 3
#define STATUS_FD 4

enum { CAP_BND, CAP_EFF, CAP_PRM, CAP_INH, CAP_AMB, NCAPSETS };

struct rlim {
	int res;
	struct rlimit lim;
};

struct plan {
	pid_t pid;
	unsigned long long start; // /proc/PID/stat starttime: guards against pid reuse
	const char **cgroups;     // cgroup.procs files to join
	int ncgroups;
	bool has_oom, has_user, has_caps, nnp;
	int oom;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	const char *cwd;
	uint64_t caps[NCAPSETS];
	struct rlim *rlimits;
	int nrlimits;
	const char *seccomp; // file of struct sock_filter
	unsigned seccomp_flags;
	const char **env, **args;
	int nenv, nargs;
};

static void xstatus(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void xstatus(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwrite_line(STATUS_FD, fmt, ap);
	va_end(ap);
}

// fail reports that nothing was started and exits.
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char buf[1800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	xstatus("error %s", buf);
	_exit(255);
}

static char *read_fd(int fd, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *b = malloc(cap + 1);
	for (;;) {
		if (!b)
			fail("out of memory");
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("read plan: %s", strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap + 1);
		}
	}
	b[n] = 0;
	*len = n;
	return b;
}

static unsigned long long num(const char *key, const char *v, unsigned long long max)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || end == v || *end || x > max || v[0] == '-')
		fail("plan: bad number %s=%s", key, v);
	return x;
}

static long long snum(const char *key, const char *v)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		fail("plan: bad number %s=%s", key, v);
	return x;
}

#define GROW(arr, n) \
	do { \
		arr = realloc(arr, sizeof *(arr) * (size_t)((n) + 1)); \
		if (!(arr)) \
			fail("out of memory"); \
	} while (0)

static rlim_t rlim_value(const char *key, const char *v)
{
	if (!strcmp(v, "unlimited"))
		return RLIM_INFINITY;
	return (rlim_t)num(key, v, ~0ULL);
}

static void parse_plan(struct plan *p)
{
	size_t len;
	char *b = read_fd(PLAN_FD, &len);
	close(PLAN_FD);
	if (len == 0 || b[len - 1] != 0)
		fail("plan: empty or not NUL-terminated");
	for (char *r = b, *next; r < b + len; r = next) {
		next = r + strlen(r) + 1;
		char *v = strchr(r, '=');
		if (!v)
			fail("plan: record without '='");
		*v++ = 0;
		if (!strcmp(r, "pid"))
			p->pid = (pid_t)num(r, v, INT32_MAX);
		else if (!strcmp(r, "start"))
			p->start = num(r, v, ~0ULL);
		else if (!strcmp(r, "cgroup")) {
			GROW(p->cgroups, p->ncgroups);
			p->cgroups[p->ncgroups++] = v;
		} else if (!strcmp(r, "oom")) {
			p->has_oom = true;
			p->oom = (int)snum(r, v);
		} else if (!strcmp(r, "uid")) {
			p->has_user = true;
			p->uid = (uid_t)num(r, v, UINT32_MAX - 1);
		} else if (!strcmp(r, "gid"))
			p->gid = (gid_t)num(r, v, UINT32_MAX - 1);
		else if (!strcmp(r, "group")) {
			GROW(p->groups, p->ngroups);
			p->groups[p->ngroups++] = (gid_t)num(r, v, UINT32_MAX - 1);
		} else if (!strcmp(r, "cwd"))
			p->cwd = v;
		else if (!strcmp(r, "nnp"))
			p->nnp = num(r, v, 1);
		else if (!strncmp(r, "caps.", 5)) {
			static const char *const names[NCAPSETS] = {"bounding", "effective", "permitted", "inheritable",
								    "ambient"};
			int k = 0;
			while (k < NCAPSETS && strcmp(r + 5, names[k]))
				k++;
			if (k == NCAPSETS)
				fail("plan: unknown record %s", r);
			p->has_caps = true;
			p->caps[k] = num(r, v, ~0ULL);
		} else if (!strcmp(r, "rlimit")) { // RESOURCE,SOFT,HARD
			char *s1 = strchr(v, ','), *s2 = s1 ? strchr(s1 + 1, ',') : NULL;
			if (!s2)
				fail("plan: bad rlimit %s", v);
			*s1++ = 0;
			*s2++ = 0;
			GROW(p->rlimits, p->nrlimits);
			struct rlim *l = &p->rlimits[p->nrlimits++];
			l->res = (int)num("rlimit", v, RLIM_NLIMITS - 1);
			l->lim.rlim_cur = rlim_value("rlimit", s1);
			l->lim.rlim_max = rlim_value("rlimit", s2);
		} else if (!strcmp(r, "seccomp"))
			p->seccomp = v;
		else if (!strcmp(r, "seccomp_flags"))
			p->seccomp_flags = (unsigned)num(r, v, UINT32_MAX);
		else if (!strcmp(r, "env")) {
			GROW(p->env, p->nenv);
			p->env[p->nenv++] = v;
		} else if (!strcmp(r, "arg")) {
			GROW(p->args, p->nargs);
			p->args[p->nargs++] = v;
		} else
			fail("plan: unknown record %s", r);
	}
	// Never run a command with the shim's own (root, all capabilities)
	// credentials by omission.
	if (p->pid <= 0 || p->nargs == 0 || !p->has_user || !p->has_caps)
		fail("plan: pid, uid, caps and args are required");
	if (p->cwd && p->cwd[0] != '/')
		fail("plan: cwd %s is not absolute", p->cwd);
	GROW(p->env, p->nenv);
	p->env[p->nenv] = NULL;
	GROW(p->args, p->nargs);
	p->args[p->nargs] = NULL;
}

// start_time reads field 22 of /proc/PID/stat.
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *s = strrchr(buf, ')'); // comm may hold spaces and parentheses
	if (!s)
		return 0;
	s++;
	for (int field = 3; field < 22 && s; field++) // s: the blank before field 3
		s = strchr(s + 1, ' ');
	return s ? strtoull(s + 1, NULL, 10) : 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static int last_cap(void)
{
	char buf[16] = {0};
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CAP_LAST_CAP;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 ? atoi(buf) : CAP_LAST_CAP;
}

static struct sock_fprog read_filter(const char *path)
{
	struct sock_fprog prog = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("seccomp filter %s: %s", path, strerror(errno));
	size_t n;
	char *b = read_fd(fd, &n);
	close(fd);
	if (n == 0 || n % sizeof(struct sock_filter) || n / sizeof(struct sock_filter) > BPF_MAXINSNS)
		fail("seccomp filter %s: %zu bytes is not a program", path, n);
	prog.len = (unsigned short)(n / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)b;
	return prog;
}

// ---- the child: from here on errors go to the error pipe, then _exit ----

static int err_fd = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char buf[1024];
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1;
	n += snprintf(buf + n, sizeof buf - (size_t)n, ": %s", strerror(e));
	if ((size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1;
	write_all(err_fd, buf, (size_t)n);
	_exit(127);
}

static const char *getenv_in(const char **env, const char *name)
{
	size_t l = strlen(name);
	for (; *env; env++)
		if (!strncmp(*env, name, l) && (*env)[l] == '=')
			return *env + l + 1;
	return NULL;
}

// home_of returns uid's home from the container's /etc/passwd, "/" when
// it has none (runc's default exec user).
static char *home_of(uid_t uid)
{
	static char home[PATH_MAX];
	strcpy(home, "/");
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return home;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *fld[7] = {0};
		char *s = line;
		int k = 0;
		for (; k < 7 && s; k++) {
			fld[k] = s;
			s = strchr(s, ':');
			if (s)
				*s++ = 0;
		}
		if (k < 6 || !fld[2] || !*fld[2])
			continue;
		char *end;
		unsigned long u = strtoul(fld[2], &end, 10);
		if (*end || u != uid)
			continue;
		snprintf(home, sizeof home, "%s", fld[5]);
		break;
	}
	fclose(f);
	return home;
}

// look_path resolves arg0 like Go's exec.LookPath (which runc uses): a name
// with a slash as is, else the first executable regular file in $PATH of the
// process's environment; no $PATH finds nothing.
static const char *look_path(const char *arg0, const char **env)
{
	struct stat st;
	if (strchr(arg0, '/')) {
		if (stat(arg0, &st) < 0)
			die("exec %s", arg0);
		return arg0;
	}
	const char *path = getenv_in(env, "PATH");
	static char buf[PATH_MAX];
	for (const char *d = path; d && *d;) {
		const char *e = strchr(d, ':');
		size_t dl = e ? (size_t)(e - d) : strlen(d);
		if (dl == 0)
			snprintf(buf, sizeof buf, "./%s", arg0);
		else
			snprintf(buf, sizeof buf, "%.*s/%s", (int)dl, d, arg0);
		if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111))
			return buf;
		d = e ? e + 1 : NULL;
	}
	errno = ENOENT;
	die("exec: %s: executable file not found in $PATH", arg0);
}

static void fix_stdio(uid_t uid, gid_t gid)
{
	struct stat null;
	bool have_null = stat("/dev/null", &null) == 0;
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			continue;
		if (have_null && S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev)
			continue;
		if (st.st_uid == uid)
			continue;
		// like runc: a file we may not chown (EINVAL, EPERM) stays as it is
		if (fchown(fd, uid, gid) < 0 && errno != EINVAL && errno != EPERM)
			die("fix stdio permissions");
	}
}

static void load_seccomp(const struct plan *p, const struct sock_fprog *prog)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, prog) < 0)
		die("load seccomp filter");
}

static void child(const struct plan *p, const struct sock_fprog *prog, int lastcap)
{
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); // nothing of ours reaches the process
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);

	for (int i = 0; i < p->nrlimits; i++)
		if (setrlimit(p->rlimits[i].res, &p->rlimits[i].lim) < 0)
			die("setrlimit %d", p->rlimits[i].res);
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("prctl(PR_SET_NO_NEW_PRIVS)");
	// Without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the
	// capabilities go (runc does the same).
	if (prog && !p->nnp)
		load_seccomp(p, prog);

	bool chdir_later = false;
	if (p->cwd && chdir(p->cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			die("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
		chdir_later = true; // maybe only the container's user may enter it
	}
	if (p->has_caps)
		for (int c = 0; c <= lastcap; c++)
			if (!(p->caps[CAP_BND] & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				die("drop capability %d from the bounding set", c);
	if (p->has_user) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die("prctl(PR_SET_KEEPCAPS)");
		fix_stdio(p->uid, p->gid);
		if (setgroups((size_t)p->ngroups, p->groups) < 0)
			die("setgroups");
		if (setresgid(p->gid, p->gid, p->gid) < 0)
			die("setgid %u", p->gid);
		if (setresuid(p->uid, p->uid, p->uid) < 0)
			die("setuid %u", p->uid);
	}
	if (chdir_later && chdir(p->cwd) < 0)
		die("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
	if (p->has_user && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die("prctl(PR_SET_KEEPCAPS)");
	if (p->has_caps) {
		struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
		struct __user_cap_data_struct d[2];
		for (int k = 0; k < 2; k++) {
			d[k].effective = (uint32_t)(p->caps[CAP_EFF] >> (32 * k));
			d[k].permitted = (uint32_t)(p->caps[CAP_PRM] >> (32 * k));
			d[k].inheritable = (uint32_t)(p->caps[CAP_INH] >> (32 * k));
		}
		if (syscall(SYS_capset, &h, d) < 0)
			die("capset");
		for (int c = 0; c <= lastcap; c++)
			if ((p->caps[CAP_AMB] & (1ULL << c)) &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				die("raise ambient capability %d", c);
	}
	// The credentials changed: only now does a parent-death signal stick.
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	const char **env = p->env;
	if (!getenv_in(env, "HOME")) {
		static char homevar[PATH_MAX + 8];
		snprintf(homevar, sizeof homevar, "HOME=%s", home_of(p->has_user ? p->uid : getuid()));
		const char **e = calloc((size_t)p->nenv + 2, sizeof *e);
		if (!e)
			die("out of memory");
		memcpy(e, env, sizeof *e * (size_t)p->nenv);
		e[p->nenv] = homevar;
		env = e;
	}
	const char *name = look_path(p->args[0], env);
	if (access(name, X_OK) < 0) // like runc's Eaccess: a noexec mount says so now
		die("exec %s", name);
	if (prog && p->nnp)
		load_seccomp(p, prog); // as late as possible: few syscalls after it
	execve(name, (char *const *)p->args, (char *const *)env);
	die("exec %s", name);
}

int exec_main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) < 0 || fcntl(PLAN_FD, F_SETFD, FD_CLOEXEC) < 0)
		_exit(255);
	struct plan p = {0};
	parse_plan(&p);
	struct sock_fprog prog, *progp = NULL;
	if (p.seccomp) {
		prog = read_filter(p.seccomp);
		progp = &prog;
	}
	int lastcap = last_cap();
	if (lastcap > 63)
		lastcap = 63;

	int pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);
	if (pidfd < 0)
		fail("container process %d: %s", (int)p.pid, strerror(errno));
	if (p.start && start_time(p.pid) != p.start)
		fail("container process %d is gone (its pid was reused)", (int)p.pid);

	char self[32];
	snprintf(self, sizeof self, "%d", (int)getpid());
	for (int i = 0; i < p.ncgroups; i++)
		if (write_str(p.cgroups[i], self) < 0 && errno != ENOENT)
			fail("join cgroup %s: %s", p.cgroups[i], strerror(errno));
	if (p.has_oom) {
		char v[32];
		snprintf(v, sizeof v, "%d", p.oom);
		if (write_str("/proc/self/oom_score_adj", v) < 0)
			fail("set oom_score_adj %d: %s", p.oom, strerror(errno));
	}
	// A container process must never reach this host binary through
	// /proc/PID/exe: not dumpable until execve. (After oom_score_adj, which
	// a process that is not dumpable may no longer write.)
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	// Every namespace of the init at once (the user namespace is not joined:
	// the caller sends containers with one to runc). A namespace the
	// container shares with the host is the one we are in already.
	int ns = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP;
	if (setns(pidfd, ns) < 0)
		fail("join the namespaces of container process %d: %s", (int)p.pid, strerror(errno));
	close(pidfd);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(ep[0]);
		close(STATUS_FD);
		err_fd = ep[1];
		child(&p, progp, lastcap);
	}
	close(ep[1]);
	char msg[1024];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(ep[0], msg + n, sizeof msg - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof msg - 1)
			break;
	}
	close(ep[0]);
	int st;
	if (n > 0) {
		msg[n] = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		fail("%s", msg);
	}
	xstatus("started %d", (int)pid);
	close(STATUS_FD);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			_exit(255);
	}
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}
