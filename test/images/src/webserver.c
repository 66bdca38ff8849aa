/* webserver: a tiny HTTP server standing in for nginx / httpd / hostnet-nginx in the
 * critest images. Configured through the environment:
 *   WEB_PORT   TCP port (default 80)
 *   WEB_NAME   name printed in its log and pages (default "nginx")
 *   WEB_PIDFILE  file that receives its pid (optional)
 *   WEB_TITLE  if set, the process re-executes itself once with this argv[0] (so
 *              /proc/PID/cmdline reads like "nginx: master process ..."); the pid and
 *              the process name (comm, from the binary's file name) stay the same.
 * Every request gets a small HTML page; each request is logged to stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
	const char *title = getenv("WEB_TITLE");
	if (title && *title && strcmp(argv[0], title) != 0) {
		/* exec the binary by its own path (not /proc/self/exe): the kernel names the
		 * process after the executed file, and it must stay e.g. "nginx" */
		char self[4096];
		ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
		if (l <= 0) { perror("readlink /proc/self/exe"); return 1; }
		self[l] = 0;
		char *nargv[] = {(char *)title, NULL};
		execv(self, nargv);
		perror("re-exec");
		return 1;
	}
	(void)argc;
	const char *name = getenv("WEB_NAME");
	if (!name || !*name) name = "nginx";
	int port = 80;
	if (getenv("WEB_PORT")) port = atoi(getenv("WEB_PORT"));
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);

	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	int v6 = 1;
	if (fd < 0) { fd = socket(AF_INET, SOCK_STREAM, 0); v6 = 0; }
	if (fd < 0) { perror("socket"); return 1; }
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc;
	if (v6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
		struct sockaddr_in6 a = {0};
		a.sin6_family = AF_INET6;
		a.sin6_port = htons(port);
		a.sin6_addr = in6addr_any;
		rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	} else {
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_port = htons(port);
		a.sin_addr.s_addr = htonl(INADDR_ANY);
		rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	}
	if (rc < 0 || listen(fd, 64) < 0) { fprintf(stderr, "%s: bind/listen :%d: %s\n", name, port, strerror(errno)); return 1; }

	const char *pidfile = getenv("WEB_PIDFILE");
	if (pidfile && *pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f) { fprintf(stderr, "%s: %s: %s\n", name, pidfile, strerror(errno)); return 1; }
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	printf("%s: listening on port %d\n", name, port);
	fflush(stdout);

	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) { if (errno == EINTR) continue; perror("accept"); return 1; }
		char req[4096];
		ssize_t n = read(c, req, sizeof req - 1);
		if (n < 0) n = 0;
		req[n] = 0;
		char *eol = strpbrk(req, "\r\n");
		if (eol) *eol = 0;
		char body[512];
		int bl = snprintf(body, sizeof body,
			"<!DOCTYPE html>\n<html><head><title>Welcome to %s!</title></head>\n"
			"<body><h1>Welcome to %s!</h1><p>It works!</p></body></html>\n", name, name);
		char resp[1024];
		int rl = snprintf(resp, sizeof resp,
			"HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Type: text/html\r\n"
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", name, bl, body);
		if (write(c, resp, rl) < 0) { /* client went away */ }
		close(c);
		printf("%s: \"%s\" 200 %d\n", name, req, bl);
		fflush(stdout);
	}
}
