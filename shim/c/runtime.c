// Runtime calls: `<runtime> --log <state>/runtime-<n>.log --log-format json [--root R] <cmd> ...`.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

static int seq;
struct rcall *active_calls[4];

int rt_spawn(struct rcall *rc, const char *cmd, const char *const *args, int in, int out, int err)
{
	int slot = -1;
	for (int i = 0; i < 4; i++)
		if (!active_calls[i])
			slot = i;
	if (slot < 0) {
		errno = EBUSY;
		return -1;
	}
	char logf[PATH_MAX_LOG];
	rc->seq = ++seq;
	snprintf(logf, sizeof logf, "%s/runtime-%d.log", cfg.state_dir, rc->seq);
	const char *argv[32];
	int n = 0;
	argv[n++] = cfg.runtime;
	argv[n++] = "--log";
	argv[n++] = logf;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	if (cfg.runtime_root) {
		argv[n++] = "--root";
		argv[n++] = cfg.runtime_root;
	}
	argv[n++] = cmd;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	int null = -1;
	if (in < 0 || out < 0 || err < 0) {
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0)
			return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, in >= 0 ? in : null, 0);
	posix_spawn_file_actions_adddup2(&fa, out >= 0 ? out : null, 1);
	posix_spawn_file_actions_adddup2(&fa, err >= 0 ? err : null, 2);
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGHUP);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	// The runtime runs with the usual umask 022, not the shim's own 077:
	// `runc create` makes the mount points missing in the image with it
	// (MkdirAll 0755), and with 077 a directory such as /mnt of a mount at
	// /mnt/x, or /var/run/secrets of the service account token's, would be
	// 0700, closed to a container that does not run as root. The shim is
	// single-threaded, so the umask is its own again before anything else.
	mode_t mask = umask(022);
	int e = posix_spawn(&pid, cfg.runtime_fd >= 0 ? cfg.runtime_exec : cfg.runtime, &fa, &at, (char *const *)argv, environ);
	umask(mask);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (null >= 0)
		close(null);
	if (e) {
		errno = e;
		return -1;
	}
	rc->pid = pid;
	rc->cmd = cmd;
	rc->done = false;
	rc->killed = false;
	rc->code = 0;
	rc->deadline = now_ns(CLOCK_MONOTONIC) + (int64_t)cfg.timeout_ms * 1000000LL;
	active_calls[slot] = rc;
	return 0;
}

// rt_reaped is called by reap_children for every reaped pid; true when it
// was a runtime call.
bool rt_reaped(pid_t pid, int code)
{
	for (int i = 0; i < 4; i++) {
		struct rcall *rc = active_calls[i];
		if (rc && rc->pid == pid) {
			rc->done = true;
			rc->code = code;
			rc->pid = 0;
			active_calls[i] = NULL;
			return true;
		}
	}
	return false;
}

// rt_deadlines SIGKILLs calls past their deadline and returns the earliest
// remaining deadline (0: none).
int64_t rt_deadlines(int64_t now)
{
	int64_t next = 0;
	for (int i = 0; i < 4; i++) {
		struct rcall *rc = active_calls[i];
		if (!rc || rc->killed)
			continue;
		if (now >= rc->deadline) {
			logmsg("%s %s: timed out after %ld ms, killing pid %d", cfg.runtime_base, rc->cmd,
			       cfg.timeout_ms, (int)rc->pid);
			kill(rc->pid, SIGKILL);
			rc->killed = true;
		} else if (!next || rc->deadline < next) {
			next = rc->deadline;
		}
	}
	return next;
}

// json_string decodes the JSON string at *p (pointing at '"') into out.
static bool json_string(const char **p, char *out, size_t cap)
{
	const char *s = *p + 1;
	size_t n = 0;
	while (*s && *s != '"') {
		char c = *s++;
		if (c == '\\') {
			c = *s++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4 && *s; i++, s++) {
					char h = *s;
					v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
				}
				char u[3];
				int k = 0;
				if (v < 0x80) {
					u[k++] = (char)v;
				} else if (v < 0x800) {
					u[k++] = (char)(0xc0 | (v >> 6));
					u[k++] = (char)(0x80 | (v & 0x3f));
				} else {
					u[k++] = (char)(0xe0 | (v >> 12));
					u[k++] = (char)(0x80 | ((v >> 6) & 0x3f));
					u[k++] = (char)(0x80 | (v & 0x3f));
				}
				for (int i = 0; i < k; i++)
					if (n + 1 < cap)
						out[n++] = u[i];
				continue;
			}
			case 0: return false;
			default: break; // \" \\ \/
			}
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	if (*s != '"')
		return false;
	out[n] = 0;
	*p = s + 1;
	return true;
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

// json_error returns whether line is an error/fatal entry and copies its msg.
static bool json_error(const char *s, char *msg, size_t cap)
{
	char key[16], val[16];
	bool is_err = false, has_msg = false;
	s = skip_ws(s);
	if (*s++ != '{')
		return false;
	for (;;) {
		s = skip_ws(s);
		if (*s != '"')
			break;
		if (!json_string(&s, key, sizeof key))
			return false;
		s = skip_ws(s);
		if (*s++ != ':')
			return false;
		s = skip_ws(s);
		if (*s == '"') {
			bool ismsg = !strcmp(key, "msg");
			if (!json_string(&s, ismsg ? msg : val, ismsg ? cap : sizeof val))
				return false;
			if (ismsg)
				has_msg = true;
			else if (!strcmp(key, "level"))
				is_err = !strcmp(val, "error") || !strcmp(val, "fatal");
		} else {
			// skip a number, literal, object or array
			int depth = 0;
			while (*s) {
				if (*s == '"') {
					char tmp[2];
					if (!json_string(&s, tmp, sizeof tmp))
						return false;
					continue;
				}
				if (*s == '{' || *s == '[')
					depth++;
				else if (*s == '}' || *s == ']') {
					if (depth == 0)
						break;
					depth--;
				} else if (*s == ',' && depth == 0)
					break;
				s++;
			}
		}
		s = skip_ws(s);
		if (*s != ',')
			break;
		s++;
	}
	return is_err && has_msg;
}

char *rt_result(struct rcall *rc)
{
	char logf[PATH_MAX_LOG];
	snprintf(logf, sizeof logf, "runtime-%d.log", rc->seq);
	char *res = NULL;
	if (rc->code != 0 || rc->killed) {
		char msg[2048] = "";
		FILE *f = fopen(logf, "re");
		if (f) {
			char *line = NULL;
			size_t cap = 0;
			char tmp[2048];
			while (getline(&line, &cap, f) > 0)
				if (json_error(line, tmp, sizeof tmp))
					memcpy(msg, tmp, sizeof msg);
			free(line);
			fclose(f);
		}
		if (rc->killed)
			snprintf(msg, sizeof msg, "timed out after %ld ms", cfg.timeout_ms);
		else if (!msg[0])
			snprintf(msg, sizeof msg, "exit status %d", rc->code);
		size_t l = strlen(cfg.runtime_base) + strlen(rc->cmd) + strlen(msg) + 8;
		res = malloc(l);
		if (res) {
			snprintf(res, l, "%s %s: %s", cfg.runtime_base, rc->cmd, msg);
			one_line(res);
		}
	}
	unlink(logf);
	return res;
}

// rt_run_sync runs one call to its end, reaping children on the way.
char *rt_run_sync(const char *cmd, const char *const *args)
{
	struct rcall rc = {0};
	if (rt_spawn(&rc, cmd, args, -1, -1, -1) < 0) {
		char buf[512];
		snprintf(buf, sizeof buf, "%s %s: %s", cfg.runtime_base, cmd, strerror(errno));
		return strdup(buf);
	}
	while (!rc.done) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		rt_deadlines(now);
		int ms = rc.killed ? 1000 : (int)((rc.deadline - now) / 1000000LL) + 1;
		struct pollfd p = {.fd = sig_fd, .events = POLLIN};
		poll(&p, 1, ms);
		struct signalfd_siginfo si;
		while (read(sig_fd, &si, sizeof si) > 0) {
		}
		reap_children();
	}
	return rt_result(&rc);
}
