/* ini.c - INI parsing and secret resolution. Calls: libc, common/log. */
#include "common/ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/str.h"

#define INI_MAX_BYTES (1 << 20)

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_-.", *s))
			return 0;
	return 1;
}

static enum mfs_err add_section(struct ini *ini, const char *name, int line)
{
	struct ini_section *p;

	p = realloc(ini->sec, sizeof(*p) * (size_t)(ini->nsec + 1));
	if (!p)
		return MFS_ENOMEM;
	ini->sec = p;
	p = &ini->sec[ini->nsec];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	p->line = line;
	if (!p->name)
		return MFS_ENOMEM;
	ini->nsec++;
	return MFS_OK;
}

static enum mfs_err add_kv(struct ini_section *sec, const char *k,
			   const char *v, int line)
{
	struct ini_kv *p = realloc(sec->kv, sizeof(*p) * (size_t)(sec->nkv + 1));

	if (!p)
		return MFS_ENOMEM;
	sec->kv = p;
	p = &sec->kv[sec->nkv];
	p->key = strdup(k);
	p->value = strdup(v);
	p->line = line;
	if (!p->key || !p->value) {
		free(p->key);
		free(p->value);
		return MFS_ENOMEM;
	}
	sec->nkv++;
	return MFS_OK;
}

enum mfs_err ini_parse(const char *text, const char *path, struct ini **out,
		       struct errbuf *eb)
{
	struct ini *ini = calloc(1, sizeof(*ini));
	char *copy = strdup(text), *line, *next;
	enum mfs_err rc = MFS_OK;
	int lineno = 0;

	*out = NULL;
	if (!ini || !copy || !(ini->path = strdup(path))) {
		rc = MFS_ENOMEM;
		goto out;
	}
	ini->private_mode = 1;
	for (line = copy; line && !rc; line = next) {
		char *s, *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');

			if (!end || trim(end + 1)[0]) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: malformed section header",
					    path, lineno);
				break;
			}
			*end = '\0';
			s = trim(s + 1);
			if (!valid_name(s)) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: bad remote name '%s' (use letters, digits, '_', '-', '.')",
					    path, lineno, s);
				break;
			}
			if (ini_section(ini, s)) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: section [%s] defined twice",
					    path, lineno, s);
				break;
			}
			rc = add_section(ini, s, lineno);
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			rc = eb_set(eb, MFS_EINVAL,
				    "%s:%d: expected 'key = value'", path,
				    lineno);
			break;
		}
		if (!ini->nsec) {
			rc = eb_set(eb, MFS_EINVAL,
				    "%s:%d: setting outside of any [remote] section",
				    path, lineno);
			break;
		}
		*eq = '\0';
		{
			struct ini_section *sec = &ini->sec[ini->nsec - 1];
			char *k = trim(s), *v = trim(eq + 1);
			int i;

			if (!*k) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: empty key", path, lineno);
				break;
			}
			for (i = 0; i < sec->nkv; i++)
				if (!strcmp(sec->kv[i].key, k))
					break;
			if (i < sec->nkv) {
				rc = eb_set(eb, MFS_EINVAL,
					    "%s:%d: '%s' set twice in [%s] (first on line %d)",
					    path, lineno, k, sec->name,
					    sec->kv[i].line);
				break;
			}
			rc = add_kv(sec, k, v, lineno);
		}
	}
out:
	free(copy);
	if (rc) {
		ini_free(ini);
		return rc;
	}
	*out = ini;
	return MFS_OK;
}

enum mfs_err ini_load(const char *path, struct ini **out, struct errbuf *eb)
{
	struct buf b;
	struct stat st;
	char chunk[4096];
	enum mfs_err rc = MFS_OK;
	FILE *f;
	size_t n;

	*out = NULL;
	f = fopen(path, "r");
	if (!f)
		return eb_set(eb, errno == ENOENT ? MFS_ENOTFOUND : MFS_EACCES,
			      "cannot open config file %s: %s", path,
			      strerror(errno));
	buf_init(&b, INI_MAX_BYTES);
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_add(&b, chunk, n);
	if (rc == MFS_ERANGE)
		eb_set(eb, MFS_EINVAL, "config file %s is larger than 1 MiB",
		       path);
	if (!rc && fstat(fileno(f), &st))
		rc = eb_set(eb, MFS_EIO, "stat %s: %s", path, strerror(errno));
	fclose(f);
	if (!rc && b.data && memchr(b.data, '\0', b.len))
		rc = eb_set(eb, MFS_EINVAL, "config file %s contains a NUL byte",
			    path);
	if (!rc)
		rc = ini_parse(b.data ? b.data : "", path, out, eb);
	if (!rc)
		(*out)->private_mode = (st.st_mode & 077) == 0;
	buf_cleanup(&b);
	return rc == MFS_ERANGE ? MFS_EINVAL : rc;
}

void ini_free(struct ini *ini)
{
	int i, j;

	if (!ini)
		return;
	for (i = 0; i < ini->nsec; i++) {
		for (j = 0; j < ini->sec[i].nkv; j++) {
			free(ini->sec[i].kv[j].key);
			free(ini->sec[i].kv[j].value);
		}
		free(ini->sec[i].kv);
		free(ini->sec[i].name);
	}
	free(ini->sec);
	free(ini->path);
	free(ini);
}

struct ini_section *ini_section(struct ini *ini, const char *name)
{
	int i;

	for (i = 0; i < ini->nsec; i++)
		if (!strcmp(ini->sec[i].name, name))
			return &ini->sec[i];
	return NULL;
}

const char *ini_get(struct ini_section *sec, const char *key)
{
	int i;

	for (i = 0; i < sec->nkv; i++)
		if (!strcmp(sec->kv[i].key, key))
			return sec->kv[i].value;
	return NULL;
}

enum mfs_err ini_default(struct ini_section *sec, const char *key,
			 const char *value)
{
	struct ini_kv *kv;

	if (ini_get(sec, key))
		return MFS_OK;
	kv = realloc(sec->kv, sizeof(*kv) * (size_t)(sec->nkv + 1));
	if (!kv)
		return MFS_ENOMEM;
	sec->kv = kv;
	kv[sec->nkv].key = strdup(key);
	kv[sec->nkv].value = strdup(value);
	kv[sec->nkv].line = sec->line;
	if (!kv[sec->nkv].key || !kv[sec->nkv].value) {
		free(kv[sec->nkv].key);
		free(kv[sec->nkv].value);
		return MFS_ENOMEM;
	}
	sec->nkv++;
	return MFS_OK;
}

static enum mfs_err read_secret_file(const char *path, const char *what,
				     char **out, struct errbuf *eb)
{
	char line[4096];
	struct stat st;
	FILE *f = fopen(path, "r");

	if (!f)
		return eb_set(eb, MFS_EINVAL, "%s: cannot open %s: %s", what,
			      path, strerror(errno));
	if (fstat(fileno(f), &st) || (st.st_mode & 044)) {
		fclose(f);
		return eb_set(eb, MFS_EACCES,
			      "%s: secret file %s is readable by group or others; run 'chmod 600 %s'",
			      what, path, path);
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0])
		return eb_set(eb, MFS_EINVAL, "%s: secret file %s is empty",
			      what, path);
	*out = strdup(line);
	explicit_bzero(line, sizeof(line));
	return *out ? MFS_OK : MFS_ENOMEM;
}

enum mfs_err secret_resolve(const struct ini *ini, const char *spec,
			    const char *what, char **out, struct errbuf *eb)
{
	enum mfs_err rc = MFS_OK;

	*out = NULL;
	if (str_starts(spec, "env:")) {
		const char *v = getenv(spec + 4);

		if (!v || !*v)
			return eb_set(eb, MFS_EINVAL,
				      "%s: environment variable %s is not set",
				      what, spec + 4);
		*out = strdup(v);
		if (!*out)
			rc = MFS_ENOMEM;
	} else if (str_starts(spec, "file:")) {
		rc = read_secret_file(spec + 5, what, out, eb);
	} else {
		if (ini && !ini->private_mode)
			return eb_set(eb, MFS_EACCES,
				      "%s: config file %s holds a literal secret but is readable by group or others; run 'chmod 600 %s' or use env:VAR / file:PATH",
				      what, ini->path, ini->path);
		*out = strdup(spec);
		if (!*out)
			rc = MFS_ENOMEM;
	}
	if (!rc)
		log_add_secret(*out);
	return rc;
}

void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
