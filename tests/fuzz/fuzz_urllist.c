/* fuzz_urllist.c - the URL-list parsers of backend/urllist.c: manifest
 * lines to tree paths (url_key, add_url) and URL fields found at any depth
 * of a JSON export (walk_json). */
#include "../../src/backend/urllist.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char f_url[] = "url", f_src[] = "src", strip[] = "/media/";
	struct ulist u = { 0 };
	struct jwalk w = { &u, MFS_OK };
	char *s = fuzz_str(data, size), *line, *nl;
	struct js *j = NULL;
	size_t i;

	if (!s)
		return 0;
	log_set_level(LOG_LVL_ERR);
	u.fields[0] = f_url;
	u.fields[1] = f_src;
	u.nfields = 2;
	u.strip = size & 1 ? strip : NULL;
	for (line = s; !w.rc; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		w.rc = add_url(&u, line);
		if (!nl)
			break;
	}
	if (!js_parse((const char *)data, size, &j, NULL)) {
		walk_json(&w, j);
		js_free(j);
	}
	for (i = 0; i < u.n; i++) {
		/* a key is a relative path of usable names */
		if (!u.e[i].key[0] || u.e[i].key[0] == '/')
			abort();
		free(u.e[i].key);
		free(u.e[i].url);
	}
	free(u.e);
	free(s);
	return 0;
}
