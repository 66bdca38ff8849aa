// The event loop: container output → CRI log + attach clients, stdin,
// runtime calls, the control and attach sockets, the init's exit.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
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

#define QUEUE_CAP (4u << 20)
#define MAX_PAYLOAD (1u << 20)
#define DRAIN_NS (5LL * 1000000000LL)

enum kind { K_SIG, K_CTL_L, K_ATT_L, K_CON_L, K_CON_C, K_CTL, K_ATT, K_STREAM, K_STDIN, K_FIFO };
struct watch {
	int kind;
	int fd;
};

// ---- queues: chunks allocated only when a peer is slower than us ----

struct chunk {
	struct chunk *next;
	size_t len, off;
	char data[];
};
struct queue {
	struct chunk *head, *tail;
	size_t bytes;
};

static int q_push(struct queue *q, const char *a, size_t an, const char *b, size_t bn)
{
	struct chunk *c = malloc(sizeof *c + an + bn);
	if (!c)
		return -1;
	c->next = NULL;
	c->len = an + bn;
	c->off = 0;
	if (an)
		memcpy(c->data, a, an);
	if (bn)
		memcpy(c->data + an, b, bn);
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->bytes += an + bn;
	return 0;
}

static size_t freed; // queue bytes freed since the last malloc_trim

static void q_free(struct queue *q)
{
	freed += q->bytes;
	while (q->head) {
		struct chunk *c = q->head;
		q->head = c->next;
		free(c);
	}
	q->tail = NULL;
	q->bytes = 0;
}

// q_flush writes queued data: 0 all written, 1 more to write later, -1 error.
static int q_flush(int fd, struct queue *q)
{
	while (q->head) {
		struct chunk *c = q->head;
		ssize_t n = write(fd, c->data + c->off, c->len - c->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			return -1;
		}
		c->off += (size_t)n;
		q->bytes -= (size_t)n;
		freed += (size_t)n;
		if (c->off == c->len) {
			q->head = c->next;
			if (!q->head)
				q->tail = NULL;
			free(c);
		}
	}
	return 0;
}

// q_send writes a+b to a non-blocking fd, queueing what does not fit:
// 0 written, 1 (partly) queued, -1 error, -2 queue over cap.
static int q_send(int fd, struct queue *q, const char *a, size_t an, const char *b, size_t bn)
{
	if (!q->head) {
		struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
		ssize_t n;
		do
			n = writev(fd, iov, 2);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno != EAGAIN)
				return -1;
			n = 0;
		}
		size_t w = (size_t)n;
		if (w == an + bn)
			return 0;
		if (w >= an) {
			b += w - an;
			bn -= w - an;
			an = 0;
		} else {
			a += w;
			an -= w;
		}
	}
	if (q->bytes + an + bn > QUEUE_CAP)
		return -2;
	if (q_push(q, a, an, b, bn) < 0)
		return -1;
	return 1;
}

// ---- state ----

enum status { ST_CREATING, ST_CREATED, ST_STARTING, ST_RUNNING, ST_STOPPED };
static enum status status = ST_CREATING;
static pid_t init_pid;
static bool init_exited;
static int exit_code, oom;
static int64_t started_ns, exited_ns, drain_deadline;
static char *start_msg;
static char *oom_file;
static unsigned long long oom_base;
static bool oom_base_ok;

static int epfd = -1;
int sig_fd = -1;
static struct watch w_sig = {K_SIG, -1}, w_ctl_l = {K_CTL_L, -1}, w_att_l = {K_ATT_L, -1};
static struct watch w_con_l = {K_CON_L, -1}, w_con_c = {K_CON_C, -1};
static int log_fd = -1;
static bool log_err_reported;

struct stream {
	struct watch w;
	const char *name;
	char ftype;
	bool open;
	size_t len;
	char *buf;
};
static struct stream s_out = {{K_STREAM, -1}, "stdout", 1, false, 0, NULL};
static struct stream s_err = {{K_STREAM, -1}, "stderr", 2, false, 0, NULL};
static int pty = -1;                 // pty master (terminal), kept for resize
static int out_w = -1, err_w = -1, in_r = -1; // runtime's ends during create

static struct watch w_in = {K_STDIN, -1}; // container stdin (pipe or dup of the pty master)
// start without `runc start`: runc's exec fifo, read here (fast_start_begin)
static struct watch w_fifo = {K_FIFO, -1};
static bool fifo_data;
static int64_t fifo_deadline;
static char fifo_path[PATH_MAX_LOG];
static struct queue in_q;
static bool in_closing, in_out_on;

static struct rcall create_call, start_call;

struct ctl {
	struct watch w;
	struct ctl *next;
	bool dead, waiting, starting, answered;
	size_t inlen, outlen, outoff;
	char *out;
	char in[4098]; // a request of 4096 bytes, its newline, a NUL
};
static struct ctl *ctls;

struct att {
	struct watch w;
	struct att *next;
	bool dead, closing, paused, out_on;
	uint8_t type, hdrn, payn;
	uint32_t remain;
	struct queue q;
	uint8_t hdr[5], pay[8];
};
static struct att *atts;
static bool stdin_full;

static void ep_add(struct watch *w, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = w};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &e) < 0)
		logmsg("epoll add fd %d: %s", w->fd, strerror(errno));
}

static void ep_mod(struct watch *w, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = w};
	epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &e);
}

static void close_watch(struct watch *w)
{
	if (w->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
}

// ---- set-up ----

const char *setup_loop(void)
{
	static char err[256];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sig_fd < 0 || epfd < 0) {
		snprintf(err, sizeof err, "signalfd/epoll: %s", strerror(errno));
		return err;
	}
	w_sig.fd = sig_fd;
	ep_add(&w_sig, EPOLLIN);
	return NULL;
}

const char *open_log(void)
{
	static char err[256];
	if (!cfg.log_path)
		return NULL;
	mode_t old = umask(027); // the log is 0640 (our own files are 0600)
	int fd = open(cfg.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	int e = errno;
	umask(old);
	errno = e;
	if (fd < 0) {
		snprintf(err, sizeof err, "open log %s: %s", cfg.log_path, strerror(errno));
		return err;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	log_err_reported = false;
	return NULL;
}

static int listen_unix(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, name);
	unlink(name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || chmod(name, 0600) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

const char *setup_io(void)
{
	static char err[256];
	if ((w_ctl_l.fd = listen_unix("shim.sock")) < 0 || (w_att_l.fd = listen_unix("attach.sock")) < 0) {
		snprintf(err, sizeof err, "listen: %s", strerror(errno));
		return err;
	}
	s_out.buf = malloc(cfg.line_size);
	s_err.buf = malloc(cfg.line_size);
	if (!s_out.buf || !s_err.buf)
		return "out of memory";
	if (cfg.terminal) {
		if ((w_con_l.fd = listen_unix("console.sock")) < 0) {
			snprintf(err, sizeof err, "listen console.sock: %s", strerror(errno));
			return err;
		}
		ep_add(&w_con_l, EPOLLIN);
		return NULL;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	s_out.w.fd = p[0];
	out_w = p[1];
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	s_err.w.fd = p[0];
	err_w = p[1];
	if (cfg.stdin_) {
		if (pipe2(p, O_CLOEXEC) < 0)
			goto fail;
		in_r = p[0];
		w_in.fd = p[1];
		set_nonblock(w_in.fd);
	}
	set_nonblock(s_out.w.fd);
	set_nonblock(s_err.w.fd);
	s_out.open = s_err.open = true;
	ep_add(&s_out.w, EPOLLIN);
	ep_add(&s_err.w, EPOLLIN);
	if (w_in.fd >= 0)
		ep_add(&w_in, 0);
	return NULL;
fail:
	snprintf(err, sizeof err, "pipe: %s", strerror(errno));
	return err;
}

// ---- the console socket: the runtime sends the pty master ----

static void console_accept(void)
{
	int c = accept4(w_con_l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (w_con_c.fd >= 0) {
		close(c); // one connection only
		return;
	}
	w_con_c.fd = c;
	ep_add(&w_con_c, EPOLLIN);
}

static void console_read(void)
{
	char buf[256];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = {buf, sizeof buf};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
	ssize_t n = recvmsg(w_con_c.fd, &m, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); n >= 0 && h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int nfd = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[4];
		memcpy(fds, CMSG_DATA(h), sizeof(int) * (size_t)(nfd > 4 ? 4 : nfd));
		for (int i = 0; i < nfd && i < 4; i++) {
			if (pty < 0)
				pty = fds[i];
			else
				close(fds[i]);
		}
	}
	close_watch(&w_con_c);
	if (pty < 0)
		return;
	set_nonblock(pty);
	s_out.w.fd = pty;
	s_out.open = true;
	ep_add(&s_out.w, EPOLLIN);
	if (cfg.stdin_) {
		w_in.fd = fcntl(pty, F_DUPFD_CLOEXEC, 3);
		if (w_in.fd >= 0)
			ep_add(&w_in, 0);
	}
}

// ---- the CRI log ----

static void log_entry(struct stream *s, bool partial, const char *p, size_t n)
{
	if (log_fd < 0)
		return;
	char hdr[64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int h = (int)strftime(hdr, sizeof hdr, "%Y-%m-%dT%H:%M:%S", &tm);
	h += snprintf(hdr + h, sizeof hdr - (size_t)h, ".%09ldZ %s %c ", ts.tv_nsec, s->name, partial ? 'P' : 'F');
	struct iovec iov[3] = {{hdr, (size_t)h}, {(void *)p, n}, {"\n", 1}};
	size_t total = (size_t)h + n + 1;
	ssize_t w;
	do
		w = writev(log_fd, iov, 3);
	while (w < 0 && errno == EINTR);
	if (w >= 0 && (size_t)w < total) {
		// short write (disk full?): finish the entry
		size_t done = (size_t)w;
		for (int i = 0; i < 3; i++) {
			if (done >= iov[i].iov_len) {
				done -= iov[i].iov_len;
				continue;
			}
			if (write_all(log_fd, (char *)iov[i].iov_base + done, iov[i].iov_len - done) < 0) {
				w = -1;
				break;
			}
			done = 0;
		}
	}
	if (w < 0 && !log_err_reported) {
		log_err_reported = true;
		logmsg("write log %s: %s", cfg.log_path, strerror(errno));
	}
}

// ---- attach clients ----

static void att_close(struct att *a);

static void att_events(struct att *a)
{
	uint32_t ev = (a->paused || a->closing ? 0 : EPOLLIN) | (a->out_on ? EPOLLOUT : 0);
	ep_mod(&a->w, ev);
}

static void att_send(struct att *a, uint8_t type, const char *p, uint32_t n)
{
	if (a->dead)
		return;
	char hdr[5] = {(char)type, (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n};
	int r = q_send(a->w.fd, &a->q, hdr, 5, p, n);
	if (r < 0) {
		if (r == -2)
			logmsg("attach client too slow (%zu bytes queued): disconnected", a->q.bytes);
		att_close(a);
	} else if (r == 1 && !a->out_on) {
		a->out_on = true;
		att_events(a);
	}
}

static void broadcast(uint8_t type, const char *p, size_t n)
{
	for (struct att *a = atts; a; a = a->next)
		if (!a->dead && !a->closing)
			att_send(a, type, p, (uint32_t)n);
}

// att_finish sends the exit frame and closes the connection once it is written.
static void att_finish(struct att *a)
{
	char code[4] = {(char)(exit_code >> 24), (char)(exit_code >> 16), (char)(exit_code >> 8), (char)exit_code};
	att_send(a, 5, code, 4);
	if (a->dead)
		return;
	a->closing = true;
	if (!a->q.head)
		att_close(a);
	else
		att_events(a);
}

// ---- container stdin ----

static void stdin_resume(void)
{
	if (!stdin_full || in_q.bytes >= QUEUE_CAP)
		return;
	stdin_full = false;
	for (struct att *a = atts; a; a = a->next)
		if (!a->dead && a->paused) {
			a->paused = false;
			att_events(a);
		}
}

static void stdin_close_now(void)
{
	q_free(&in_q);
	close_watch(&w_in);
	in_out_on = false;
	stdin_resume(); // clients paused on a full queue read (and drop) again
}

static void stdin_flush(void)
{
	if (w_in.fd < 0)
		return;
	int r = q_flush(w_in.fd, &in_q);
	if (r < 0) {
		logmsg("write container stdin: %s", strerror(errno));
		stdin_close_now();
	} else if (r == 0 && in_closing) {
		stdin_close_now();
	} else if ((r == 1) != in_out_on) {
		in_out_on = r == 1;
		ep_mod(&w_in, in_out_on ? EPOLLOUT : 0);
	}
	stdin_resume();
}

static void stdin_write(const char *p, size_t n)
{
	if (w_in.fd < 0 || in_closing || n == 0)
		return;
	int r = q_send(w_in.fd, &in_q, p, n, NULL, 0);
	if (r == -2) // over the cap: pausing the clients keeps us under it
		r = q_push(&in_q, p, n, NULL, 0) < 0 ? -1 : 1;
	if (r < 0) {
		logmsg("write container stdin: %s", strerror(errno));
		stdin_close_now();
		return;
	}
	if (r == 1 && !in_out_on) {
		in_out_on = true;
		ep_mod(&w_in, EPOLLOUT);
	}
	if (in_q.bytes >= QUEUE_CAP)
		stdin_full = true;
}

// stdin_close closes the container's stdin once queued data is written; on
// a terminal it sends an end-of-file character first.
static void stdin_close(void)
{
	if (w_in.fd < 0 || in_closing)
		return;
	if (pty >= 0)
		stdin_write("\x04", 1);
	in_closing = true;
	if (!in_q.head)
		stdin_close_now();
}

static void do_resize(uint32_t w, uint32_t h)
{
	struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
	if (pty >= 0 && ioctl(pty, TIOCSWINSZ, &ws) < 0)
		logmsg("resize: %s", strerror(errno));
}

static void att_close(struct att *a)
{
	if (a->dead)
		return;
	a->dead = true;
	close_watch(&a->w);
	q_free(&a->q);
	if (cfg.stdin_once)
		stdin_close();
}

static void att_frame_done(struct att *a)
{
	if (a->type == 3 && cfg.stdin_once)
		stdin_close();
	else if (a->type == 4 && a->payn == 8)
		do_resize((uint32_t)a->pay[0] << 24 | (uint32_t)a->pay[1] << 16 | (uint32_t)a->pay[2] << 8 | a->pay[3],
			  (uint32_t)a->pay[4] << 24 | (uint32_t)a->pay[5] << 16 | (uint32_t)a->pay[6] << 8 | a->pay[7]);
	a->hdrn = 0;
}

static void att_read(struct att *a)
{
	static char buf[16384];
	for (int iter = 0; iter < 8 && !a->dead; iter++) {
		if (stdin_full) {
			a->paused = true;
			att_events(a);
			return;
		}
		ssize_t n = read(a->w.fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			att_close(a);
			return;
		}
		for (size_t off = 0; off < (size_t)n && !a->dead;) {
			if (a->hdrn < 5) {
				a->hdr[a->hdrn++] = (uint8_t)buf[off++];
				if (a->hdrn < 5)
					continue;
				a->type = a->hdr[0];
				a->remain = (uint32_t)a->hdr[1] << 24 | (uint32_t)a->hdr[2] << 16 | (uint32_t)a->hdr[3] << 8 |
					    a->hdr[4];
				a->payn = 0;
				if (a->remain > MAX_PAYLOAD) {
					logmsg("attach frame of %u bytes: disconnected", a->remain);
					att_close(a);
					return;
				}
				if (a->remain == 0)
					att_frame_done(a);
				continue;
			}
			size_t take = (size_t)n - off;
			if (take > a->remain)
				take = a->remain;
			if (a->type == 0)
				stdin_write(buf + off, take);
			else if (a->type == 4)
				for (size_t i = 0; i < take && a->payn < 8; i++)
					a->pay[a->payn++] = (uint8_t)buf[off + i];
			off += take;
			a->remain -= (uint32_t)take;
			if (a->remain == 0)
				att_frame_done(a);
		}
	}
}

static void att_accept(void)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(w_att_l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct att *a = calloc(1, sizeof *a);
		if (!a) {
			close(fd);
			return;
		}
		a->w.kind = K_ATT;
		a->w.fd = fd;
		a->next = atts;
		atts = a;
		ep_add(&a->w, EPOLLIN);
		if (status == ST_STOPPED)
			att_finish(a);
		else if (stdin_full) {
			a->paused = true;
			att_events(a);
		}
	}
}

// ---- output ----

static void finish_exit(void);

static void stream_eof(struct stream *s)
{
	if (s->len)
		log_entry(s, false, s->buf, s->len);
	s->len = 0;
	s->open = false;
	if (s->w.fd == pty) { // keep the pty master for resize
		epoll_ctl(epfd, EPOLL_CTL_DEL, pty, NULL);
		s->w.fd = -1;
	} else {
		close_watch(&s->w);
	}
}

static void stream_read(struct stream *s)
{
	for (int iter = 0; iter < 8 && s->open; iter++) {
		size_t cap = cfg.line_size - s->len;
		if (cap > MAX_PAYLOAD) // one read is one attach frame
			cap = MAX_PAYLOAD;
		ssize_t n = read(s->w.fd, s->buf + s->len, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { // EOF, or EIO from a pty master without a slave
			if (n < 0 && errno != EIO)
				logmsg("read %s: %s", s->name, strerror(errno));
			stream_eof(s);
			return;
		}
		broadcast((uint8_t)s->ftype, s->buf + s->len, (size_t)n);
		size_t start = 0, scan = s->len;
		s->len += (size_t)n;
		char *nl;
		while ((nl = memchr(s->buf + scan, '\n', s->len - scan))) {
			size_t end = (size_t)(nl - s->buf);
			log_entry(s, false, s->buf + start, end - start);
			start = scan = end + 1;
		}
		if (start > 0) {
			memmove(s->buf, s->buf + start, s->len - start);
			s->len -= start;
		} else if (s->len == cfg.line_size) {
			log_entry(s, true, s->buf, s->len);
			s->len = 0;
		}
	}
}

// ---- OOM ----

static bool oom_read(unsigned long long *v)
{
	if (!oom_file)
		return false;
	FILE *f = fopen(oom_file, "re");
	if (!f)
		return false;
	char line[256];
	bool ok = false;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "oom_kill %llu", v) == 1) {
			ok = true;
			break;
		}
	fclose(f);
	return ok;
}

static void oom_setup(void)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/cgroup", (int)init_pid);
	FILE *f = fopen(p, "re");
	char *line = NULL, *v1 = NULL, *v2 = NULL;
	size_t cap = 0;
	ssize_t n;
	while (f && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		if (!strcmp(line, "0") && c1[1] == 0 && !v2)
			v2 = strdup(c2 + 1);
		for (char *tok = strtok(c1 + 1, ","); tok; tok = strtok(NULL, ","))
			if (!strcmp(tok, "memory") && !v1)
				v1 = strdup(c2 + 1);
	}
	free(line);
	if (f)
		fclose(f);
	if (v1 || v2) {
		size_t l = strlen(v1 ? v1 : v2) + 64;
		oom_file = malloc(l);
		if (v1)
			snprintf(oom_file, l, "/sys/fs/cgroup/memory%s/memory.oom_control", v1);
		else
			snprintf(oom_file, l, "/sys/fs/cgroup%s/memory.events", v2);
		if (!v1 && access(oom_file, F_OK) < 0) // hybrid hierarchy
			snprintf(oom_file, l, "/sys/fs/cgroup/unified%s/memory.events", v2);
	}
	free(v1);
	free(v2);
	oom_base_ok = oom_read(&oom_base);
	if (!oom_base_ok)
		logmsg("no OOM counter for pid %d (%s): OOM kills will not be reported", (int)init_pid,
		       oom_file ? oom_file : "no memory cgroup");
}

// ---- control connections ----

static void ctl_close(struct ctl *c)
{
	if (c->dead)
		return;
	c->dead = true;
	close_watch(&c->w);
	free(c->out);
	c->out = NULL;
}

static void ctl_flush(struct ctl *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write(c->w.fd, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ep_mod(&c->w, EPOLLOUT);
			return;
		}
		if (n < 0) {
			ctl_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	ctl_close(c);
}

static void __attribute__((format(printf, 2, 3))) ctl_answer(struct ctl *c, const char *fmt, ...)
{
	if (c->dead || c->answered)
		return;
	c->answered = true;
	c->waiting = c->starting = false;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&c->out, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->out = NULL;
		ctl_close(c);
		return;
	}
	// one line
	for (int i = 0; i < n - 1; i++)
		if (c->out[i] == '\n' || c->out[i] == '\r')
			c->out[i] = ' ';
	c->outlen = (size_t)n;
	ctl_flush(c);
}

static const char *status_name(void)
{
	switch (status) {
	case ST_RUNNING: return "running";
	case ST_STOPPED: return "stopped";
	default: return "created";
	}
}

static void __attribute__((noreturn)) do_shutdown(void)
{
	cleanup_files(false);
	exit(0);
}

static bool fast_start_begin(void);

// init_owns_pidns: the init is PID 1 of its innermost PID namespace (the
// last NSpid field in its status is 1), so SIGKILL to it kills every process
// of the namespace (the kernel's zap_pid_ns_processes).
static bool init_owns_pidns(void)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/status", (int)init_pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return false;
	char line[256];
	bool own = false;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		char *last = NULL;
		for (char *tok = strtok(line + 6, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
			last = tok;
		own = last && !strcmp(last, "1");
		break;
	}
	fclose(f);
	return own;
}

// ctl_kill answers "kill <sig>" and "kill <sig> all" (proto/shim/PROTOCOL.md).
static void ctl_kill(struct ctl *c, const char *req, const char *args)
{
	int sig, n = 0;
	if (sscanf(args, "%d%n", &sig, &n) != 1 || sig <= 0 || sig > 64 ||
	    (strcmp(args + n, "") && strcmp(args + n, " all"))) {
		ctl_answer(c, "err invalid_argument bad kill request \"%s\"\n", req);
		return;
	}
	bool all = args[n] != 0;
	if (init_exited || status == ST_STOPPED) {
		ctl_answer(c, "ok\n");
		return;
	}
	if (init_pid <= 0) {
		ctl_answer(c, "err failed_precondition container %s has no process\n", cfg.id);
		return;
	}
	if (all && (sig != SIGKILL || !init_owns_pidns())) {
		ctl_answer(c, "err failed_precondition signalling all processes of container %s needs the runtime\n",
			   cfg.id);
		return;
	}
	// Not reaped yet (only this loop reaps): the pid is still the init's.
	if (kill(init_pid, sig) < 0 && errno != ESRCH)
		ctl_answer(c, "err unknown kill %d: %s\n", (int)init_pid, strerror(errno));
	else
		ctl_answer(c, "ok\n");
}

static void ctl_request(struct ctl *c, char *req)
{
	size_t l = strlen(req);
	if (l && req[l - 1] == '\r')
		req[--l] = 0;
	if (!strcmp(req, "state")) {
		bool st = status == ST_STOPPED;
		ctl_answer(c, "ok %s %d %lld %d %lld %d %s\n", status_name(), (int)init_pid, (long long)started_ns,
			   st ? exit_code : 0, st ? (long long)exited_ns : 0LL, st ? oom : 0, start_msg ? start_msg : "-");
	} else if (!strcmp(req, "start")) {
		if (status != ST_CREATED || init_exited) {
			ctl_answer(c, "err failed_precondition container %s is %s, not created\n", cfg.id,
				   status == ST_STARTING			  ? "starting"
				   : init_exited && status != ST_STOPPED ? "stopped"
									 : status_name());
			return;
		}
		if (fast_start_begin()) {
			status = ST_STARTING;
			c->starting = true;
			return;
		}
		const char *args[] = {cfg.id, NULL};
		if (rt_spawn(&start_call, "start", args, -1, -1, -1) < 0) {
			ctl_answer(c, "err unknown %s start: %s\n", cfg.runtime_base, strerror(errno));
			return;
		}
		status = ST_STARTING;
		c->starting = true;
	} else if (!strncmp(req, "kill ", 5)) {
		ctl_kill(c, req, req + 5);
	} else if (!strcmp(req, "wait")) {
		if (status == ST_STOPPED)
			ctl_answer(c, "ok %d %lld %d\n", exit_code, (long long)exited_ns, oom);
		else
			c->waiting = true;
	} else if (!strncmp(req, "resize ", 7)) {
		unsigned w, h;
		char extra;
		if (sscanf(req + 7, "%u %u%c", &w, &h, &extra) != 2) {
			ctl_answer(c, "err invalid_argument bad resize request \"%s\"\n", req);
		} else if (!cfg.terminal) {
			ctl_answer(c, "err failed_precondition container has no terminal\n");
		} else {
			struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
			if (status != ST_STOPPED && pty >= 0 && ioctl(pty, TIOCSWINSZ, &ws) < 0)
				ctl_answer(c, "err unknown resize: %s\n", strerror(errno));
			else
				ctl_answer(c, "ok\n");
		}
	} else if (!strcmp(req, "reopen")) {
		const char *err = open_log();
		if (err)
			ctl_answer(c, "err unknown %s\n", err);
		else
			ctl_answer(c, "ok\n");
	} else if (!strcmp(req, "shutdown")) {
		if (status != ST_STOPPED) {
			ctl_answer(c, "err failed_precondition container %s is %s\n", cfg.id, status_name());
			return;
		}
		// answer with a blocking write: the process ends right after
		int fl = fcntl(c->w.fd, F_GETFL);
		fcntl(c->w.fd, F_SETFL, fl & ~O_NONBLOCK);
		write_all(c->w.fd, "ok\n", 3);
		do_shutdown();
	} else {
		ctl_answer(c, "err invalid_argument unknown request \"%s\"\n", req);
	}
}

static void ctl_read(struct ctl *c)
{
	for (;;) {
		if (c->answered) // answered: only a hangup is of interest
			return;
		char tmp[512];
		bool have_line = memchr(c->in, '\n', c->inlen) != NULL;
		char *dst = have_line ? tmp : c->in + c->inlen;
		size_t cap = have_line ? sizeof tmp : sizeof c->in - 1 - c->inlen;
		ssize_t n = read(c->w.fd, dst, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { // the client went away (before or while waiting)
			ctl_close(c);
			return;
		}
		if (have_line)
			continue; // ignore anything after the request
		c->inlen += (size_t)n;
		c->in[c->inlen] = 0;
		char *nl = memchr(c->in, '\n', c->inlen);
		if (nl) {
			*nl = 0;
			ctl_request(c, c->in);
			*nl = '\n';
		} else if (c->inlen >= sizeof c->in - 1) {
			ctl_answer(c, "err invalid_argument request longer than 4096 bytes\n");
			return;
		}
	}
}

static void ctl_accept(void)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(w_ctl_l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ctl *c = malloc(sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		memset(c, 0, offsetof(struct ctl, in));
		c->w.kind = K_CTL;
		c->w.fd = fd;
		c->next = ctls;
		ctls = c;
		ep_add(&c->w, EPOLLIN | EPOLLRDHUP);
	}
}

// ---- children and the exit ----

static struct {
	pid_t pid;
	int code;
} early[8]; // reaped before the init's pid was known
static int nearly;

static void init_reaped(int code)
{
	init_exited = true;
	exit_code = code;
	exited_ns = now_ns(CLOCK_REALTIME);
	drain_deadline = now_ns(CLOCK_MONOTONIC) + DRAIN_NS;
}

void reap_children(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
		if (rt_reaped(pid, code))
			continue;
		if (init_pid > 0 && pid == init_pid && !init_exited) {
			init_reaped(code);
			continue;
		}
		if (init_pid == 0) {
			early[nearly % 8].pid = pid;
			early[nearly % 8].code = code;
			nearly++;
		}
	}
}

static void finish_exit(void)
{
	unsigned long long v;
	oom = oom_base_ok && oom_read(&v) && v > oom_base;
	char buf[96];
	int n = snprintf(buf, sizeof buf, "%d %lld %d\n", exit_code, (long long)exited_ns, oom);
	if (write_file_atomic("exit", buf, (size_t)n, true) < 0)
		logmsg("write exit file: %s", strerror(errno));
	status = ST_STOPPED;
	for (struct ctl *c = ctls; c; c = c->next)
		if (!c->dead && c->waiting)
			ctl_answer(c, "ok %d %lld %d\n", exit_code, (long long)exited_ns, oom);
	for (struct att *a = atts; a; a = a->next)
		if (!a->dead && !a->closing)
			att_finish(a);
}

// start_finish ends a start (err: NULL on success, else malloc'd and kept as
// the container's start message).
static void start_finish(char *err)
{
	struct ctl *c = NULL;
	for (struct ctl *x = ctls; x; x = x->next)
		if (!x->dead && x->starting)
			c = x;
	if (err) {
		free(start_msg);
		start_msg = err;
		if (status == ST_STARTING)
			status = ST_CREATED;
		if (c)
			ctl_answer(c, "err unknown %s\n", err);
		return;
	}
	started_ns = now_ns(CLOCK_REALTIME);
	if (status == ST_STARTING)
		status = ST_RUNNING;
	if (c)
		ctl_answer(c, "ok %d\n", (int)init_pid);
}

static void start_done(void) { start_finish(rt_result(&start_call)); }

// fast_start_begin starts the container the way `runc start` does, without
// running runc: runc init waits in an open() of <root>/<id>/exec.fifo for
// writing until a reader appears, writes one byte, and execs the container's
// process (closing its end). `runc start` (1.1 to 1.4: libcontainer's
// Container.exec) opens the fifo for reading, reads to EOF, requires a byte
// and removes the fifo, which is how runc tells "created" from "running"
// afterwards. Poststart hooks are not part of it: runc runs them at create.
// Returns false when this runtime or container does not allow it (the caller
// runs `runtime start` instead).
static bool fast_start_begin(void)
{
	if (cfg.start_via_runtime || strcmp(cfg.runtime_base, "runc") != 0)
		return false;
	int n = snprintf(fifo_path, sizeof fifo_path, "%s/%s/exec.fifo", cfg.runtime_root ? cfg.runtime_root : "/run/runc",
			 cfg.id);
	if (n < 0 || (size_t)n >= sizeof fifo_path)
		return false;
	int fd = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			logmsg("open %s: %s; starting through %s", fifo_path, strerror(errno), cfg.runtime_base);
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		logmsg("%s is not a fifo; starting through %s", fifo_path, cfg.runtime_base);
		close(fd);
		return false;
	}
	w_fifo.fd = fd;
	fifo_data = false;
	fifo_deadline = now_ns(CLOCK_MONOTONIC) + cfg.timeout_ms * 1000000LL;
	ep_add(&w_fifo, EPOLLIN);
	return true;
}

// fast_start_end finishes a fifo start: err NULL once runc init wrote its
// byte and closed the fifo by exec'ing the container process.
static void fast_start_end(const char *err)
{
	close_watch(&w_fifo);
	if (err) {
		char *e = NULL;
		if (asprintf(&e, "%s start: %s", cfg.runtime_base, err) < 0)
			e = NULL;
		start_finish(e ? e : strdup(err));
		return;
	}
	if (unlink(fifo_path) < 0 && errno != ENOENT)
		logmsg("remove %s: %s", fifo_path, strerror(errno));
	start_finish(NULL);
}

// fifo_drain reads what the fifo holds: 0 at EOF, 1 when more may come,
// -1 on an error.
static int fifo_drain(void)
{
	char buf[64];
	for (;;) {
		ssize_t n = read(w_fifo.fd, buf, sizeof buf);
		if (n > 0)
			fifo_data = true;
		else if (n == 0)
			return 0;
		else if (errno == EAGAIN)
			return 1;
		else if (errno != EINTR)
			return -1;
	}
}

static void fifo_read(void)
{
	int r = fifo_drain();
	if (r == 0) // EOF: runc init exec'd the container process
		fast_start_end(fifo_data ? NULL : "cannot start an already running container");
	else if (r < 0)
		fast_start_end(strerror(errno));
}

// fifo_check ends a fifo start whose init died or whose deadline passed;
// returns the deadline still pending (0: none).
static int64_t fifo_check(int64_t now)
{
	if (w_fifo.fd < 0)
		return 0;
	if (init_exited) { // started and already ended, or died before its byte
		fifo_drain();
		fast_start_end(fifo_data ? NULL : "container process is already dead");
		return 0;
	}
	if (now >= fifo_deadline) {
		logmsg("start: no word from runc init on %s in %ld ms", fifo_path, cfg.timeout_ms);
		char msg[64];
		snprintf(msg, sizeof msg, "timed out after %ld ms", cfg.timeout_ms);
		fast_start_end(msg);
		return 0;
	}
	return fifo_deadline;
}

// ---- create ----

static void handle_event(struct watch *w, uint32_t ev);

static int read_pid_file(void)
{
	char buf[32] = "";
	int fd = open("container.pid", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (v <= 0 || end == buf)
		return -1;
	return (int)v;
}

char *run_create(void)
{
	char sock[PATH_MAX_LOG];
	const char *args[8];
	int n = 0;
	args[n++] = "--bundle";
	args[n++] = cfg.bundle;
	args[n++] = "--pid-file";
	args[n++] = "container.pid";
	if (cfg.terminal) {
		snprintf(sock, sizeof sock, "%s/console.sock", cfg.state_dir);
		if (strlen(sock) >= 100)
			snprintf(sock, sizeof sock, "/proc/%d/cwd/console.sock", (int)getpid());
		args[n++] = "--console-socket";
		args[n++] = sock;
	}
	args[n++] = cfg.id;
	args[n] = NULL;
	if (rt_spawn(&create_call, "create", args, in_r, out_w, err_w) < 0) {
		char *e = NULL;
		if (asprintf(&e, "%s create: %s", cfg.runtime_base, strerror(errno)) < 0)
			e = NULL;
		return e ? e : strdup("spawn failed");
	}
	// the runtime (and through it the container) holds these now
	if (in_r >= 0)
		close(in_r);
	if (out_w >= 0)
		close(out_w);
	if (err_w >= 0)
		close(err_w);
	in_r = out_w = err_w = -1;

	struct epoll_event evs[16];
	while (!create_call.done) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		int64_t next = rt_deadlines(now);
		int ms = next ? (int)((next - now) / 1000000LL) + 1 : 1000;
		int k = epoll_wait(epfd, evs, 16, ms);
		for (int i = 0; i < k; i++)
			handle_event(evs[i].data.ptr, evs[i].events);
	}
	char *err = rt_result(&create_call);
	if (!err) {
		init_pid = read_pid_file();
		if (init_pid <= 0) {
			init_pid = 0;
			err = strdup("read container.pid: bad or missing pid file");
		}
	}
	if (!err && cfg.terminal && pty < 0) {
		// the runtime sent the master before it exited: take it now
		if (w_con_c.fd < 0)
			console_accept();
		if (w_con_c.fd >= 0)
			console_read();
		if (pty < 0)
			err = strdup("receive pty master: the runtime sent none");
	}
	if (w_con_l.fd >= 0) {
		close_watch(&w_con_l);
		close_watch(&w_con_c);
		unlink("console.sock");
	}
	if (err)
		return err;
	for (int i = 0; i < nearly && i < 8; i++)
		if (early[i].pid == init_pid)
			init_reaped(early[i].code);
	oom_setup();
	status = ST_CREATED;
	ep_add(&w_ctl_l, EPOLLIN);
	ep_add(&w_att_l, EPOLLIN);
	return NULL;
}

void cleanup_files(bool failed)
{
	unlink("shim.sock");
	unlink("attach.sock");
	unlink("console.sock");
	if (failed)
		unlink(".exit.tmp");
	unlink("container.pid");
}

void cleanup_after_failed_create(void)
{
	struct stat st;
	if (stat("container.pid", &st) == 0 || create_call.killed) {
		const char *args[] = {"--force", cfg.id, NULL};
		char *e = rt_run_sync("delete", args);
		if (e) {
			logmsg("%s", e);
			free(e);
		}
	}
	cleanup_files(true);
}

// ---- the loop ----

static void handle_event(struct watch *w, uint32_t ev)
{
	switch (w->kind) {
	case K_SIG: {
		struct signalfd_siginfo si;
		while (read(sig_fd, &si, sizeof si) > 0) {
		}
		reap_children();
		if (start_call.done) {
			start_call.done = false;
			start_done();
		}
		break;
	}
	case K_CTL_L: ctl_accept(); break;
	case K_ATT_L: att_accept(); break;
	case K_CON_L: console_accept(); break;
	case K_CON_C: console_read(); break;
	case K_STREAM: stream_read((struct stream *)w); break;
	case K_FIFO: fifo_read(); break;
	case K_STDIN:
		if (ev & (EPOLLERR | EPOLLHUP))
			stdin_close_now();
		else
			stdin_flush();
		break;
	case K_CTL: {
		struct ctl *c = (struct ctl *)w;
		if (c->dead)
			break;
		if (c->out) { // answered: finish writing, or drop a client that left
			if (ev & EPOLLOUT)
				ctl_flush(c);
			else if (ev & (EPOLLHUP | EPOLLERR))
				ctl_close(c);
		} else if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			ctl_read(c);
		}
		break;
	}
	case K_ATT: {
		struct att *a = (struct att *)w;
		if (a->dead)
			break;
		if (ev & EPOLLOUT) {
			int r = q_flush(a->w.fd, &a->q);
			if (r < 0) {
				att_close(a);
				break;
			}
			if (r == 0) {
				if (a->closing) {
					att_close(a);
					break;
				}
				a->out_on = false;
				att_events(a);
			}
		}
		if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			if (a->closing || a->paused) {
				if (ev & (EPOLLHUP | EPOLLERR))
					att_close(a);
			} else {
				att_read(a);
			}
		}
		break;
	}
	}
}

static void sweep(void)
{
	for (struct ctl **p = &ctls; *p;) {
		struct ctl *c = *p;
		if (c->dead) {
			*p = c->next;
			free(c);
		} else {
			p = &c->next;
		}
	}
	for (struct att **p = &atts; *p;) {
		struct att *a = *p;
		if (a->dead) {
			*p = a->next;
			free(a);
		} else {
			p = &a->next;
		}
	}
}

int run_loop(void)
{
	struct epoll_event evs[32];
	for (;;) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		int64_t fnext = fifo_check(now); // before an exit ends the container
		if (init_exited && status != ST_STOPPED && ((!s_out.open && !s_err.open) || now >= drain_deadline)) {
			if (s_out.open || s_err.open)
				logmsg("container output still open 5 s after the exit");
			finish_exit();
		}
		int64_t next = rt_deadlines(now);
		if (fnext && (!next || fnext < next))
			next = fnext;
		if (init_exited && status != ST_STOPPED && (!next || drain_deadline < next))
			next = drain_deadline;
		int ms = -1;
		if (next)
			ms = next <= now ? 0 : (int)((next - now) / 1000000LL) + 1;
		int k = epoll_wait(epfd, evs, 32, ms);
		if (k < 0 && errno != EINTR) {
			logmsg("epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < k; i++)
			handle_event(evs[i].data.ptr, evs[i].events);
		sweep();
		if (freed > (1u << 20)) { // give a burst's queue memory back
			malloc_trim(0);
			freed = 0;
		}
	}
}
