/* meta/mcache: listings replace children atomically, inodes are stable
 * and never reused, HEAD-level metadata survives an unchanged etag,
 * vanished entries go with their subtrees, everything survives reopen. */
#include <stdlib.h>
#include <unistd.h>

#include "meta/mcache.h"
#include "unit.h"

TEST_MAIN("test_mcache")

static int count_cb(void *ud, const struct mc_node *n)
{
	(void)n;
	(*(int *)ud)++;
	return 0;
}

static int children(struct mcache *mc, uint64_t dir)
{
	int n = 0;

	mcache_children(mc, dir, count_cb, &n);
	return n;
}

int main(void)
{
	char dir[] = "/tmp/mfs-mc-XXXXXX", path[256];
	struct errbuf eb = { 0 };
	struct mcache *mc = NULL;
	struct mc_node n, root;
	uint64_t a_ino, sub_ino, deep_ino, x_ino, keep_ino = 0;
	int rid = 0, rid2 = 0;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/meta.db", dir);

	CASE("open, root, remote ids");
	CHECK(mcache_open(path, &mc, &eb) == MFS_OK);
	CHECK(mcache_remote(mc, "backup", "s3 http://h bkt", &rid, &eb) ==
	      MFS_OK);
	CHECK(rid > 0);
	CHECK(mcache_set_root(mc, rid, "pre", &eb) == MFS_OK);
	CHECK(mcache_get(mc, MC_ROOT_INO, &root) == MFS_OK);
	CHECK(root.kind == MC_DIR && root.rid == rid && root.listed_at == 0);
	CHECK_STR(root.key, "pre");
	mc_node_cleanup(&root);

	CASE("listing stores children with keys under the directory's key");
	{
		struct mc_entry e[] = {
			{ "a.jpg", MC_FILE, 10, 1000, "e1", 0 },
			{ "sub", MC_DIR, 0, 0, "", 0 },
			{ "x", MC_FILE, 5, 5, "e2", 0600 },
		};

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 3, 100, &eb) ==
		      MFS_OK);
	}
	CHECK(children(mc, MC_ROOT_INO) == 3);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "a.jpg", &n) == MFS_OK);
	CHECK_STR(n.key, "pre/a.jpg");
	CHECK(n.size == 10 && n.kind == MC_FILE && n.rid == rid);
	a_ino = n.ino;
	mc_node_cleanup(&n);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "sub", &n) == MFS_OK);
	sub_ino = n.ino;
	mc_node_cleanup(&n);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "x", &n) == MFS_OK);
	/* a mode the listing carries (ImageKit) is kept; none is 0 */
	CHECK(n.mode == 0600);
	x_ino = n.ino;
	mc_node_cleanup(&n);
	CHECK(mcache_get(mc, MC_ROOT_INO, &root) == MFS_OK);
	CHECK(root.listed_at == 100);
	mc_node_cleanup(&root);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "absent", &n) == MFS_ENOTFOUND);
	{
		struct mc_entry e[] = { { "deep.png", MC_FILE, 1, 1, "e3", 0 } };

		CHECK(mcache_dir_replace(mc, sub_ino, e, 1, 100, &eb) == MFS_OK);
	}
	CHECK(mcache_lookup(mc, sub_ino, "deep.png", &n) == MFS_OK);
	CHECK_STR(n.key, "pre/sub/deep.png");
	deep_ino = n.ino;
	mc_node_cleanup(&n);

	CASE("HEAD data is kept while the etag is unchanged");
	CHECK(mcache_set_full(mc, a_ino, 10, 777, 0600, "e1", "image/jpeg", "max-age=60") ==
	      MFS_OK);
	{
		struct mc_entry e[] = {
			{ "a.jpg", MC_FILE, 10, 1000, "e1", 0 },
			{ "x", MC_FILE, 6, 9, "e2-changed", 0 },
		};

		CHECK(mcache_set_full(mc, x_ino, 5, 55, 0, "e2", "text/plain", NULL) ==
		      MFS_OK);
		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 2, 200, &eb) ==
		      MFS_OK);
	}
	CHECK(mcache_get(mc, a_ino, &n) == MFS_OK);
	CHECK(n.full && n.mtime_ns == 777 && n.mode == 0600);
	CHECK_STR(n.ctype, "image/jpeg");
	mc_node_cleanup(&n);

	CASE("a changed etag drops HEAD data, keeps the inode");
	CHECK(mcache_get(mc, x_ino, &n) == MFS_OK);
	CHECK(!n.full && n.size == 6 && n.mtime_ns == 9);
	CHECK_STR(n.ctype, "");
	mc_node_cleanup(&n);

	CASE("vanished directory goes with its subtree");
	CHECK(mcache_get(mc, sub_ino, &n) == MFS_ENOTFOUND);
	CHECK(mcache_get(mc, deep_ino, &n) == MFS_ENOTFOUND);

	CASE("a name that changes kind gets a new inode; inodes not reused");
	{
		struct mc_entry e[] = {
			{ "a.jpg", MC_DIR, 0, 0, "", 0 },
			{ "x", MC_FILE, 6, 9, "e2-changed", 0 },
		};

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 2, 300, &eb) ==
		      MFS_OK);
	}
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "a.jpg", &n) == MFS_OK);
	CHECK(n.kind == MC_DIR && n.ino != a_ino && n.ino > deep_ino);
	mc_node_cleanup(&n);
	CHECK(mcache_get(mc, a_ino, &n) == MFS_ENOTFOUND);

	CASE("invalidate marks a listing stale");
	CHECK(mcache_invalidate_dir(mc, MC_ROOT_INO) == MFS_OK);
	CHECK(mcache_get(mc, MC_ROOT_INO, &root) == MFS_OK);
	CHECK(root.listed_at == 0);
	mc_node_cleanup(&root);
	CHECK(mcache_dir_replace(mc, MC_ROOT_INO, NULL, 0, 400, &eb) ==
	      MFS_OK);
	CHECK(children(mc, MC_ROOT_INO) == 0);
	{
		struct mc_entry e[] = { { "keep", MC_FILE, 3, 3, "k", 0 } };

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 1, 500, &eb) ==
		      MFS_OK);
	}

	CASE("a listing made before a change here does not undo it");
	{
		/* the server made the listing before the upload of "up"
		 * landed, the file "new" was made and "keep" rewritten here:
		 * they stay (a file that landed during a listing vanished
		 * from the mount: test_write_crash, 2 of 209 files) */
		struct mc_entry e[] = { { "keep", MC_FILE, 3, 3, "k", 0 },
					{ "up", MC_FILE, 4, 4, "u0", 0 } };
		struct mc_entry old[] = { { "keep", MC_FILE, 3, 3, "k", 0 } };
		struct mc_set set = { 0 };
		uint64_t up_ino = 0, new_ino = 0;
		int64_t since;

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 2, 510, &eb) ==
		      MFS_OK);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "up", &n) == MFS_OK);
		up_ino = n.ino;
		mc_node_cleanup(&n);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "keep", &n) == MFS_OK);
		keep_ino = n.ino;
		mc_node_cleanup(&n);
		since = mcache_list_begin(mc);
		CHECK(mcache_add(mc, MC_ROOT_INO, "new", MC_FILE, 9, 9, 0644, 0,
				 &new_ino, &eb) == MFS_OK);
		set.mask = MC_SET_ETAG | MC_SET_SIZE;
		set.etag = "k2";
		set.size = 30;
		CHECK(mcache_set(mc, keep_ino, &set) == MFS_OK);
		/* the listing, made before: no "up", no "new", the old keep */
		CHECK(mcache_dir_replace_since(mc, MC_ROOT_INO, old, 1, 520,
					       since, &eb) == MFS_OK);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "new", &n) == MFS_OK);
		mc_node_cleanup(&n);
		CHECK(mcache_get(mc, keep_ino, &n) == MFS_OK);
		CHECK(n.size == 30 && !strcmp(n.etag, "k2"));
		mc_node_cleanup(&n);
		/* a folder made here since, where the older listing had
		 * a file: the folder stays */
		{
			struct mc_entry f[] = {
				{ "keep", MC_FILE, 3, 3, "k", 0 },
				{ "made", MC_FILE, 1, 1, "m", 0 },
			};
			uint64_t made_ino = 0;

			since = mcache_list_begin(mc);
			CHECK(mcache_add(mc, MC_ROOT_INO, "made", MC_DIR, 0,
					 9, 0755, 0, &made_ino, &eb) == MFS_OK);
			CHECK(mcache_dir_replace_since(mc, MC_ROOT_INO, f, 2,
						       520, since, &eb) ==
			      MFS_OK);
			CHECK(mcache_get(mc, made_ino, &n) == MFS_OK);
			CHECK(n.kind == MC_DIR);
			mc_node_cleanup(&n);
			CHECK(mcache_remove(mc, made_ino) == MFS_OK);
		}
		/* "up" was not changed here: the listing's word holds */
		CHECK(mcache_get(mc, up_ino, &n) == MFS_ENOTFOUND);
		/* a listing begun after the change sweeps what it lacks */
		CHECK(mcache_dir_replace_since(mc, MC_ROOT_INO, e, 1, 500,
					       mcache_list_begin(mc),
					       &eb) == MFS_OK);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "new", &n) ==
		      MFS_ENOTFOUND);
		CHECK(mcache_get(mc, keep_ino, &n) == MFS_OK);
		CHECK(n.size == 3 && !strcmp(n.etag, "k"));
		mc_node_cleanup(&n);
	}
	mcache_close(mc);
	mc = NULL;

	CASE("everything survives close and reopen");
	CHECK(mcache_open(path, &mc, &eb) == MFS_OK);
	CHECK(mcache_remote(mc, "backup", "s3 http://h bkt", &rid2, &eb) ==
	      MFS_OK);
	CHECK(rid2 == rid);
	CHECK(mcache_set_root(mc, rid, "pre", &eb) == MFS_OK);
	CHECK(mcache_get(mc, MC_ROOT_INO, &root) == MFS_OK);
	CHECK(root.listed_at == 500);
	mc_node_cleanup(&root);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "keep", &n) == MFS_OK);
	mc_node_cleanup(&n);
	{
		/* listing numbers go on from the last run's: a change made
		 * before the close is no newer than a listing begun now */
		struct mc_set set = { 0 };

		set.mask = MC_SET_SIZE;
		set.size = 31;
		CHECK(mcache_set(mc, keep_ino, &set) == MFS_OK);
		mcache_close(mc);
		CHECK(mcache_open(path, &mc, &eb) == MFS_OK);
		CHECK(mcache_dir_replace_since(mc, MC_ROOT_INO, NULL, 0, 540,
					       mcache_list_begin(mc),
					       &eb) == MFS_OK);
		CHECK(mcache_get(mc, keep_ino, &n) == MFS_ENOTFOUND);
		{
			struct mc_entry e[] = { { "keep", MC_FILE, 3, 3, "k", 0 } };

			CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 1, 500,
						 &eb) == MFS_OK);
		}
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "keep", &n) == MFS_OK);
		mc_node_cleanup(&n);
	}

	CASE("a remote pointing elsewhere drops its cached tree");
	CHECK(mcache_remote(mc, "backup", "s3 http://other bkt", &rid2, &eb) ==
	      MFS_OK);
	CHECK(rid2 == rid);
	CHECK(mcache_lookup(mc, MC_ROOT_INO, "keep", &n) == MFS_ENOTFOUND);
	CHECK(mcache_get(mc, MC_ROOT_INO, &root) == MFS_OK);
	CHECK(root.listed_at == 0);
	mc_node_cleanup(&root);

	CASE("forget_key drops a deleted file by key (a rollback), marks persist");
	{
		struct mc_entry e[] = {
			{ "gone.bin", MC_FILE, 7, 7, "g", 0 },
			{ "stays.bin", MC_FILE, 8, 8, "s", 0 },
		};
		int dropped = -1;
		int64_t v = -1;

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 2, 500, &eb) ==
		      MFS_OK);
		CHECK(mcache_forget_key(mc, rid, "pre/gone.bin", &dropped) ==
		      MFS_OK && dropped == 1);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "gone.bin", &n) ==
		      MFS_ENOTFOUND);
		CHECK(mcache_lookup(mc, MC_ROOT_INO, "stays.bin", &n) == MFS_OK);
		mc_node_cleanup(&n);
		/* another remote's key, a key not cached: nothing goes */
		CHECK(mcache_forget_key(mc, rid + 1, "pre/stays.bin",
					&dropped) == MFS_OK && dropped == 0);
		CHECK(mcache_forget_key(mc, rid, "pre/none", &dropped) ==
		      MFS_OK && dropped == 0);
		CHECK(children(mc, MC_ROOT_INO) == 1);
		CHECK(mcache_mark_get(mc, "m", &v) == MFS_OK && v == 0);
		CHECK(mcache_mark_set(mc, "m", 42) == MFS_OK);
		mcache_close(mc);
		mc = NULL;
		CHECK(mcache_open(path, &mc, &eb) == MFS_OK);
		CHECK(mc && mcache_mark_get(mc, "m", &v) == MFS_OK && v == 42);
	}

	CASE("a different root prefix starts afresh");
	{
		struct mc_entry e[] = { { "k2", MC_FILE, 3, 3, "k", 0 } };

		CHECK(mcache_dir_replace(mc, MC_ROOT_INO, e, 1, 600, &eb) ==
		      MFS_OK);
	}
	CHECK(mcache_set_root(mc, rid, "other-prefix", &eb) == MFS_OK);
	CHECK(children(mc, MC_ROOT_INO) == 0);
	mcache_close(mc);

	unlink(path);
	{
		char p2[300];

		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	rmdir(dir);
	return unit_report();
}
