// Package schema is the dataset type system: it compiles a dataset's field
// specs (Fennel types and type restrictions) and converts decoded records
// into typed row fields (record.Field). The configuration compiles a Schema
// per dataset, the pipeline uses it only through its Converter interface, and
// sinks/postgres maps its Columns to table columns; it depends on none of
// them (its where subpackage is the `where` expressions).
//
// Compile checks a []FieldSpec once, at config load, and reports every problem
// with its path (fields[2].type, fields[0].fields[1].regex, timestamp). Convert
// then validates each decoded record (see decoders.Decoder for the value tree)
// and returns the row fields in declaration order, or a *FieldError whose Path
// names the offending value (amount, items[3].price, attrs["a.b"], $ for the
// record itself). A Schema is immutable and safe for concurrent use; Convert
// never panics and does not modify the record.
//
// # Straight from JSON bytes
//
// ConvertJSON is the hot path for JSON sources: it scans a record's bytes once,
// reads only the members the fields name (following refs inside the text),
// validates the rest without building it, and boxes only the row's values: no
// map[string]any, no json.Number. It gives exactly what Convert gives for the
// record as decoders/jsondec decodes it, or declines (ok false) and leaves the
// record to that general path: invalid JSON, a record that does not fit (the
// general path then names the error, so decode and schema errors and their
// messages are those of Convert), or nesting deeper than 1000. The table tests
// run every record through both, and FuzzConvert compares them. A caller with
// many records, or several datasets per record, scans each record once into a
// reused JSONRecord and converts it with AppendJSON (the pipeline does, and
// where.Filter.MatchScanned reads the same scan): the rows of a batch then
// share one []record.Field and their values are boxed in slabs.
//
// # Records and fields
//
// The record must be a JSON object. Each field takes its value from Ref (a path
// such as user.address[0].city or ["key.with.dots"].x; default: the field's
// Name) or from Const. Fields the schema does not name are ignored. A missing
// value, or a null or missing parent on the ref path, is an error for a
// non-optional field and null (nil) for optional[T]. A parent of the wrong kind
// (a string where the path wants an object) is an error even for optional
// fields. Null is never accepted by a non-optional type. The timestamp field
// must be a top-level, non-optional datetime; with timestamp "" Compile picks the
// only datetime field.
//
// # Record metadata
//
// A dataset's own field (not a struct's) whose ref is exactly one of these
// names reads the stream record it was decoded from instead of the payload
// (ConvertFrom, ConvertKeysFrom, JSONRecord.From, AppendNamed's from; see
// MetadataNames):
//
//	$partition_key    str       the producer's partition key
//	$shard_id         str       the shard it was read from
//	$sequence_number  str       the sequence number Kinesis assigned
//	$arrival_time     datetime  when Kinesis accepted it (ms precision)
//	$stream           str       the stream's name, from its ARN
//	$source           str       the config's source name
//	$data             bytes|str the payload as received (str: must be UTF-8)
//
// and, for a log event split from a CloudWatch Logs envelope
// (record.Record.Event; other records have none, and converting fails):
//
//	$log_group        str       the envelope's log group
//	$log_stream       str       the envelope's log stream
//	$owner            str       the envelope's owner (an AWS account id)
//	$event_id         str       the event's id
//	$event_timestamp  datetime  the event's timestamp (ms precision)
//
// The type is checked at Compile ("declare type: datetime"). Such a field
// is read like any other by where, computed fields, the timestamp and the
// sample. Any other ref reads the payload, $-prefixed ones included, and a
// quoted key always does: ["$partition_key"] is the payload's member of that
// name. Converted without its stream record (Convert, ConvertJSON), such a
// field is an error.
//
// # Types and accepted values
//
// Fennel does not coerce across types: a string "42" is not an int and a JSON
// true is not a str. Go values are those of record.Field.
//
//	int         int64. A JSON number that is an integer literal within int64,
//	            or a number literal with an exponent or fraction whose value is
//	            a whole number within int64 (2.0, 1e3, 12.50e1). 2.5 is rejected
//	            ("not a whole number"), 9223372036854775808 and 1e30 are rejected
//	            ("outside int64 range"). Avro int/long; Avro float/double under
//	            the same whole-number rule.
//	float       float64. Any JSON number, integers included; Avro int, long,
//	            float, double. Non-finite values and numbers beyond float64
//	            (1e400) are rejected; numbers below its precision round to the
//	            nearest float (1e-400 is 0).
//	bool        JSON true/false only.
//	str         A string of valid UTF-8.
//	bytes       []byte. A base64 string (standard or URL alphabet, padded or
//	            not), or Avro bytes/fixed.
//	datetime    time.Time in UTC, truncated (floored) to the microsecond, within
//	            years 0001..9999. See "Datetime" below.
//	date        record.Date. A "YYYY-MM-DD" string, an integer count of days since
//	            1970-01-01 (Avro date), or a time.Time at exactly midnight UTC.
//	decimal[p]  record.Decimal, canonical text with exactly p digits after the
//	            point ("-12.50"; no exponent, no leading zeros, no "-0"). 1 <= p
//	            <= 28 and at most 38 significant digits in all (Fennel stores an
//	            int128). Accepted: JSON numbers (read exactly from their text, no
//	            float rounding), strings holding a number ("12.5", "1.25e1") since
//	            producers often send decimals as strings to avoid float rounding
//	            (JSON number syntax, leading zeros allowed: "+1", ".5", "1." and
//	            blanks are rejected),
//	            Avro decimal (*big.Rat), ints, and floats (by their shortest
//	            decimal text, so 0.1 is 0.1). A value needing more than p digits
//	            after the point is rejected, never rounded; trailing zeros beyond p
//	            are fine (12.500 fits decimal[2]).
//	optional[T] nil for null or missing, else T.
//	list[T]     []any of T.
//	map[T]      map[string]any of T (a JSON object; keys are always strings).
//	            dict[T] is an alias.
//	struct      []record.Field in the order of the spec's Fields; a JSON object.
//	embedding[n] []float64 of exactly n numbers (float rules).
//
// Type names are case-insensitive (Optional[int]).
//
// # Datetime
//
// A datetime value may be:
//
//   - a string in RFC 3339 / ISO-8601 form: YYYY-MM-DD, optionally followed by
//     T (or t or a space) hh:mm[:ss[.fraction]] and a zone Z, ±hh:mm, ±hhmm or
//     ±hh. No zone means UTC, a date alone is midnight UTC, the fraction may
//     have any number of digits (beyond microseconds they are dropped);
//   - a string in RFC 2822 form: [Day,] D Mon YYYY hh:mm[:ss] zone, the zone
//     being ±hhmm, UT, GMT, or a US zone (EST, EDT, CST, CDT, MST, MDT, PST,
//     PDT). As RFC 2822 §4.3 says, any other alphabetic zone (JST, CET,
//     military letters) is unknown and read as -0000, i.e. UTC. A day name must
//     match the date; 2-digit years are 19xx when >= 50 else 20xx;
//   - an epoch number: a JSON number, an Avro int/long/float/double, or a
//     string holding a number ("1682099757"), with the unit deduced as below;
//   - a time.Time (Avro timestamp-millis/micros).
//
// The unit of an epoch number is deduced from the magnitude of its integer part
// v, as Fennel's client does: it tries seconds, then ms, then µs, then ns, and
// takes the first unit in which v is a time inside the int64-nanosecond range
// (1677-09-21 .. 2262-04-11):
//
//	|v| <= 9_223_372_036             seconds
//	|v| <= 9_223_372_036_854         milliseconds
//	|v| <= 9_223_372_036_854_775     microseconds
//	otherwise (within int64)         nanoseconds
//
// So 1682099757 is seconds, 1682099757000 milliseconds, and 9223372037 (year
// 2262 in seconds) is already milliseconds (1970-04-17). A fraction is kept
// down to the microsecond (1682099757.5 is half a second later; further digits
// are floored); values beyond int64 are rejected.
//
// # Restrictions
//
// Restrictions apply to the field's type or, for optional[T], to T (null then
// always passes). They are not allowed on other types (list[int] with between
// is a Compile error).
//
//	oneof    int or str: the value must be in the set. Set values must have the
//	         field's type exactly (1.0 is not an int); null is allowed in the
//	         set of an optional field and means nothing.
//	between  int or float: min <= v <= max, with strict_min / strict_max making
//	         either end exclusive. At least one of min and max; for an int field
//	         both must be integers. An empty range is a Compile error.
//	regex    str: RE2 syntax, matched against the whole value (implicitly
//	         anchored: "[0-9]{5}" rejects "123456").
//
// # Const
//
// A field with const takes that value for every record; the value (YAML
// scalar, list or mapping) is converted and checked against the type and
// restrictions at Compile. `const: null` is a null constant (the type must be
// optional): FieldSpec.UnmarshalYAML records the key's presence in HasConst.
package schema
