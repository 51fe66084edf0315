/* test_stage.c - staging files (core/stage.c): a landed file's staging
 * file is kept as a spare only when nobody else has it open, a reused
 * spare is empty and gets a name never handed out before, and a reader of
 * the old bytes never sees them change. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/stage.h"
#include "unit.h"

TEST_MAIN("test_stage")

static char tmpl[] = "/tmp/test_stage.XXXXXX";

static int nfiles(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A staging file holding text, closed; its path. */
static char *staged(struct stage *s, const char *text)
{
	char *p = NULL;
	int fd;

	if (stage_create(s, &fd, &p, NULL))
		return NULL;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

int main(void)
{
	char *dir = mkdtemp(tmpl), *p1, *p2, *p3, *p4, buf[16];
	uint64_t r, k, d;
	struct stage *s;
	struct stat st, st2;
	int fd, rd, n, i;

	if (!dir)
		return 1;
	CASE("new");
	CHECK(!stage_new(dir, &s, NULL));

	CASE("a landed file nobody holds is kept, emptied, and reused");
	p1 = staged(s, "first bytes");
	CHECK(p1 && !stat(p1, &st));
	stage_done(s, p1);
	CHECK(access(p1, F_OK) && errno == ENOENT);	/* its name is gone */
	stage_stats(s, &r, &k, &d);
	CHECK(k == 1 && d == 0 && r == 0);
	CHECK(nfiles(dir) == 1);			/* the spare */
	CHECK(!stage_create(s, &fd, &p2, NULL));
	CHECK(fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino);	/* reused */
	CHECK(st2.st_size == 0);
	CHECK(strcmp(p1, p2) != 0);			/* a fresh name */
	CHECK(!strncmp(strrchr(p2, '/'), "/up-", 4));
	stage_stats(s, &r, &k, &d);
	CHECK(r == 1);
	CHECK(write(fd, "second", 6) == 6);
	close(fd);

	CASE("a file a reader still holds is removed, its bytes unchanged");
	rd = open(p2, O_RDONLY);
	CHECK(rd >= 0);
	stage_done(s, p2);
	stage_stats(s, &r, &k, &d);
	CHECK(k == 1 && d == 1);
	CHECK(nfiles(dir) == 0);
	CHECK(!stage_create(s, &fd, &p3, NULL));	/* no spare: new inode */
	CHECK(fstat(fd, &st) == 0 && st.st_ino != st2.st_ino);
	CHECK(write(fd, "third!", 6) == 6);
	n = (int)pread(rd, buf, sizeof(buf), 0);
	CHECK(n == 6 && !memcmp(buf, "second", 6));
	close(rd);

	CASE("a file a writer still holds (a dup'd descriptor) is removed");
	rd = dup(fd);
	close(fd);
	stage_done(s, p3);
	stage_stats(s, &r, &k, &d);
	CHECK(k == 1 && d == 2);
	CHECK(pwrite(rd, "x", 1, 6) == 1);	/* still its own file */
	n = (int)pread(rd, buf, sizeof(buf), 0);
	CHECK(n == 7 && !memcmp(buf, "third!x", 7));
	close(rd);

	CASE("the spares are bounded; a sweep removes them");
	for (i = 0; i < 70; i++) {
		p4 = staged(s, "y");
		stage_done(s, p4);
		free(p4);
	}
	stage_stats(s, &r, &k, &d);
	CHECK(nfiles(dir) == 1);	/* one spare, reused each time */
	CHECK(r == 70);
	p4 = staged(s, "pending");	/* reuses the spare */
	CHECK(nfiles(dir) == 1);
	free(p3);
	p3 = staged(s, "gone");			/* a new inode */
	stage_done(s, p3);			/* a spare again */
	CHECK(nfiles(dir) == 2);
	/* a mount's sweep: the pending upload's file stays, the spare goes */
	CHECK(stage_sweep(s, &p4, 1) == 1);
	CHECK(access(p4, F_OK) == 0);
	CHECK(nfiles(dir) == 1);
	/* the spare it lost is passed over: a new file all the same */
	free(p1);
	CHECK(!stage_create(s, &fd, &p1, NULL) && fd >= 0);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 0);
	close(fd);
	CHECK(nfiles(dir) == 2);
	unlink(p1);
	free(p1);
	p1 = strdup(p4);
	strcpy(strrchr(p1, '/') + 1, "up-stray");

	CASE("a path the stage cannot rename is removed (no stage: unlinked)");
	fd = open(p1, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	stage_done(NULL, p1);
	CHECK(access(p1, F_OK) && errno == ENOENT);

	stage_done(s, p4);
	CHECK(nfiles(dir) == 1);
	stage_free(s);			/* removes its spares */
	CHECK(nfiles(dir) == 0);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	rmdir(dir);
	return unit_report();
}
