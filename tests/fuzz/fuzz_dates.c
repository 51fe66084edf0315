/* fuzz_dates.c - the date and time parsers of common/str: ISO 8601
 * (S3 LastModified, Supabase updated_at), HTTP dates, rclone-style mtime
 * strings, and seconds given as a JSON number (str_secs_to_ns). */
#include <math.h>

#include "common/str.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	int64_t ns;
	double d;

	if (!s)
		return 0;
	str_parse_iso8601(s, &ns);
	str_parse_http_date(s, &ns);
	str_parse_mtime(s, &ns);
	if (size >= sizeof(d)) {
		memcpy(&d, data, sizeof(d));	/* any double: NaN, 1e300 */
		str_secs_to_ns(d, &ns);
	}
	d = strtod(s, NULL);
	if (!str_secs_to_ns(d, &ns) && isfinite(d) && d > 0 && ns < 0)
		abort();	/* positive seconds never wrap negative */
	free(s);
	return 0;
}
