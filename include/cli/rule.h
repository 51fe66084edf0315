/* rule.h - copy-plan rules: "SOURCE -> TARGET".
 * SOURCE is a path pattern relative to the plan's --from directory:
 * literal text, {name} (one or more characters inside one path segment,
 * captured), * (any characters inside a segment) and ** (anything,
 * slashes included). TARGET is a path relative to --to built from
 * literal text, {name} (a capture), {map[name]} (the capture looked up in
 * the ID map "map"), {map[name].column} (another column of the record the
 * capture keys, in a JSON array or CSV map), {ext} (the extension the source's bytes sniff as:
 * jpg, png, gif, webp, tiff, …, bin when unknown) and {srcext} (the
 * source name's own extension, empty when none).
 * Owns: parsed rules and matches. Calls: cli/maps, common. A parsed rule is
 * read-only, so matching is thread-safe.
 */
#ifndef MFS_CLI_RULE_H
#define MFS_CLI_RULE_H

#include <stddef.h>

#include "common/err.h"

struct idmap;
struct rule;

#define RULE_MAX_CAPS 16

struct rule_match {
	int n;
	const char *names[RULE_MAX_CAPS];	/* borrowed from the rule */
	char *vals[RULE_MAX_CAPS];		/* owned */
};

/* Parse rule number index (1-based, for messages) against the loaded
 * maps; a name the target uses that neither the source captures nor a map
 * provides is an error naming it. */
enum mfs_err rule_parse(const char *text, int index, struct idmap *const *maps,
			int nmaps, struct rule **out, struct errbuf *eb);
void rule_free(struct rule *r);
/* 1 when the target uses {ext} (the plan must read the source). */
int rule_wants_ext(const struct rule *r);
/* 1 and m filled when rel matches the source pattern, else 0. */
int rule_match(const struct rule *r, const char *rel, struct rule_match *m);
void rule_match_cleanup(struct rule_match *m);
/* The target for a match (malloc'd into *out). MFS_ENOTFOUND with the
 * reason in why when a map has no entry ("no mapping for 'x' in users"),
 * MFS_EINVAL when the result is not a usable path. */
enum mfs_err rule_expand(const struct rule *r, const struct rule_match *m,
			 const char *rel, const char *ext, char **out,
			 char *why, size_t cap);
/* The first map of the target lacking an entry for m (after
 * rule_expand's MFS_ENOTFOUND), or NULL. */
const struct idmap *rule_missed_map(const struct rule *r,
				    const struct rule_match *m);
/* The map lookups of the target for a match: names[i] "users[old]" and
 * vals[i] its value (both borrowed), at most max; returns how many. */
int rule_lookups(const struct rule *r, const struct rule_match *m,
		 const char **names, const char **vals, int max);

#endif
