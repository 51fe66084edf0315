/* ini.h - INI files: one [section] per remote, "key = value" lines.
 * Owns: struct ini and its sections. Calls: libc. Not thread-safe; parse once
 * at start-up, then read-only.
 * '#' and ';' start comment lines; keys are case-sensitive; a key repeated in
 * one section is an error (a typo'd duplicate should not win silently).
 */
#ifndef MFS_COMMON_INI_H
#define MFS_COMMON_INI_H

#include "common/err.h"

struct ini_kv {
	char *key;
	char *value;
	int line;	/* 1-based line in the file */
};

struct ini_section {
	char *name;
	int line;
	struct ini_kv *kv;
	int nkv;
};

struct ini {
	char *path;	/* copied */
	int private_mode; /* 1 when neither group nor others may read it */
	struct ini_section *sec;
	int nsec;
};

/* Parse a file. On error eb says "PATH:LINE: what". *out is NULL then. */
enum mfs_err ini_load(const char *path, struct ini **out, struct errbuf *eb);
/* Parse from memory (tests); path is only used in messages. */
enum mfs_err ini_parse(const char *text, const char *path, struct ini **out,
		       struct errbuf *eb);
void ini_free(struct ini *ini);
struct ini_section *ini_section(struct ini *ini, const char *name);
/* Value of key in sec, or NULL. Borrowed pointer. */
const char *ini_get(struct ini_section *sec, const char *key);

/* Set key to value in sec unless the file set it (a mount option giving a
 * default to a section). */
enum mfs_err ini_default(struct ini_section *sec, const char *key,
			 const char *value);

/* Resolve a secret value as written in the config:
 *   env:VAR    the environment variable VAR (must be set and non-empty)
 *   file:PATH  the first line of PATH (refused if group/world-readable)
 *   anything else: a literal, refused if the config file itself is group- or
 *   world-readable (ini->private_mode == 0).
 * what names the setting for messages ("secret_access_key in [backup]").
 * The result is malloc'd, registered for log redaction; wipe with
 * secret_free(). */
enum mfs_err secret_resolve(const struct ini *ini, const char *spec,
			    const char *what, char **out, struct errbuf *eb);
void secret_free(char *s);

#endif
