/* hooks.h - write hooks: what happens to a file's bytes between close()
 * and the upload. Owns: struct hook_cfg (parsed from a remote's section:
 * on_write, compress.*, hook_timeout). Calls: libvips, common.
 * Runs on the upload workers (never on FUSE threads); thread-safe.
 *
 *   on_write = compress    built-in recompression with libvips: JPEG at
 *                          compress.jpeg_quality, PNG lossless at the
 *                          highest zlib level, WebP at
 *                          compress.webp_quality; GIF, TIFF, animated WebP
 *                          and everything else pass through untouched.
 *   on_write = exec:/path/tool {in} {out}
 *                          any tool: argv split on blanks (no shell), {in}
 *                          and {out} replaced by paths; killed after
 *                          hook_timeout seconds.
 * A hook never changes the staged original: its output is a new file that
 * is uploaded instead only when the hook succeeded (and, for compress,
 * only when it is smaller). Any failure means the original goes up and
 * the result says why.
 */
#ifndef MFS_CORE_HOOKS_H
#define MFS_CORE_HOOKS_H

#include <stddef.h>

#include "common/err.h"
#include "common/ini.h"

enum hook_kind { HOOK_NONE = 0, HOOK_COMPRESS, HOOK_EXEC };

struct hook_cfg {
	enum hook_kind kind;
	int jpeg_quality;	/* 1..100, default 85 */
	int png_lossless;	/* compress.png = lossless (1) | off (0) */
	int webp_quality;	/* 1..100, default 80 */
	int max_dimension;	/* 0 = keep the size */
	int strip_metadata;	/* drop EXIF/XMP/IPTC (ICC stays; orientation
				 * applied first) */
	char **argv;		/* exec: NULL-terminated */
	int timeout_s;		/* exec time limit, default 60 */
	char name[64];		/* "compress" or "exec:tool" (journal) */
};

/* The keys a remote's section may hold for hooks (NULL-terminated). */
extern const char *const hook_keys[];

/* Parse the hook keys of sec; *out is NULL when the section has no
 * on_write. Errors name the file and line. */
enum mfs_err hook_cfg_parse(const struct ini *ini, struct ini_section *sec,
			    struct hook_cfg **out, struct errbuf *eb);
void hook_cfg_free(struct hook_cfg *c);

struct hook_result {
	int applied;		/* 1: upload out_path instead of the input */
	char text[256];		/* what happened, for the journal */
};

/* Run c on the file in_path whose content type is ctype. On applied, the
 * output is at out_path (a new file next to in_path; the caller unlinks
 * it). Never fails: a problem is a result text with applied = 0. */
void hook_run(const struct hook_cfg *c, const char *in_path,
	      const char *ctype, char *out_path, size_t cap,
	      struct hook_result *res);

#endif
