/* wait.c - mediactl wait: block until the uploads at or below paths on a
 * mount are settled, by polling the mount's user.mediafs.upload_state
 * extended attribute (core/fs.h says what it holds). Needs no journal and
 * no control socket: what the mount itself shows is the answer.
 * Calls: libc. Single-threaded.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "cli/cli.h"
#include "common/str.h"

#define EXIT_TIMEOUT 124	/* what timeout(1) answers */
#define STATE_MAX 65536		/* the largest xattr value Linux passes */

static const char wait_usage[] =
"usage: mediactl wait [--timeout SECONDS] [PATH...]\n"
"  wait until no upload at or below each PATH (default .) on a mediafs\n"
"  mount is pending or running. Exit 0: all of them are on the store;\n"
"  1: some failed (listed on stderr, as REMOTE:KEY: reason); 124: still\n"
"  pending after SECONDS (default: wait as long as it takes); 2: usage,\n"
"  or a PATH that is not on a mediafs mount.\n";

/* The state of path into buf; 0, or an errno. */
static int read_state(const char *path, char *buf, size_t cap)
{
	ssize_t n = getxattr(path, "user.mediafs.upload_state", buf, cap - 1);

	if (n < 0)
		return errno;
	buf[n] = '\0';
	return 0;
}

static int settled(const char *v)
{
	return strncmp(v, "pending", 7) && strncmp(v, "uploading", 9);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int cmd_wait(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char dot[] = ".";
	char *dflt[] = { dot };
	char **paths, *buf = NULL;
	uint64_t limit_s = 0;
	double t0 = cli_now();
	int ch, i, npaths, ret = 0, err;
	long pause_ms = 20;

	(void)c;
	while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (str_parse_u64(optarg, &limit_s) ||
			    limit_s > 10 * 365 * 86400ULL)
				return cli_fail(EXIT_USAGE, "--timeout takes seconds, not '%s'",
						optarg);
			break;
		case 'h':
			fputs(wait_usage, stdout);
			return 0;
		default:
			fputs(wait_usage, stderr);
			return EXIT_USAGE;
		}
	}
	paths = optind < argc ? argv + optind : dflt;
	npaths = optind < argc ? argc - optind : 1;
	buf = malloc(STATE_MAX);
	if (!buf)
		return cli_fail(EXIT_STORE, "out of memory");
	for (i = 0; i < npaths; i++) {
		for (;;) {
			err = read_state(paths[i], buf, STATE_MAX);
			if (err == ENODATA || err == ENOTSUP) {
				ret = cli_fail(EXIT_USAGE, "%s is not on a mediafs mount",
					       paths[i]);
				goto out;
			}
			if (err) {
				ret = cli_fail(EXIT_USAGE, "%s: %s", paths[i],
					       strerror(err));
				goto out;
			}
			if (settled(buf))
				break;
			if (limit_s && cli_now() - t0 >= (double)limit_s) {
				ret = cli_fail(EXIT_TIMEOUT, "timed out after %llu s: %s: %s",
					       (unsigned long long)limit_s,
					       paths[i], buf);
				goto out;
			}
			sleep_ms(pause_ms);
			if (pause_ms < 500)
				pause_ms *= 2;
		}
		if (!strncmp(buf, "failed", 6)) {
			/* "failed: N failed\nREMOTE:KEY: reason\n..." of a
			 * directory, "failed: reason" of a file */
			fprintf(stderr, "mediactl: %s: %s%s", paths[i], buf,
				buf[strlen(buf) - 1] == '\n' ? "" : "\n");
			ret = EXIT_PROBLEMS;
		}
	}
out:
	free(buf);
	return ret;
}
