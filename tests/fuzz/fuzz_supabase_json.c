/* fuzz_supabase_json.c - Supabase Storage replies: error bodies
 * (parse_error) and listing entries with their system and user metadata
 * (meta_from_sys, meta_from_user) of backend/supabase.c. */
#include "../../src/backend/supabase.c"

#include "fuzz.h"

static void entry(const struct js *e)
{
	struct obj_meta m;

	supabase_meta_from_sys(e, &m);
	supabase_meta_from_user(js_get(e, "user_metadata"), &m);
	supabase_meta_from_user(js_get(js_get(e, "metadata"), "user_metadata"), &m);
	supabase_meta_from_user(e, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf body = { 0 };
	struct sb_error e;
	struct js *j = NULL;
	size_t i;

	log_set_level(LOG_LVL_ERR);
	body.data = fuzz_str(data, size);
	body.len = size;
	if (!body.data)
		return 0;
	parse_error(&body, &e);
	if (!js_parse(body.data, body.len, &j, NULL)) {
		entry(j);
		for (i = 0; i < js_len(j); i++)
			entry(js_at(j, i));
		for (i = 0; i < js_len(js_get(j, "objects")); i++)
			entry(js_at(js_get(j, "objects"), i));
		js_free(j);
	}
	free(body.data);
	return 0;
}
