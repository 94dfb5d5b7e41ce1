package avrodec

// DecodeNamed decodes a payload whose value is a record into its top-level
// fields, without the map[string]any that Decode builds for it: it appends
// the field values to vals, in the writer schema's field order, and returns
// their names (distinct, as Avro requires; the slice is the schema's, not to
// be modified). Each value is what Decode's map holds under that name.
//
// ok false promises nothing and means "use Decode": the payload is not
// valid, its value is not a record, a schema it needs is not at hand (a
// registry lookup failed), or its types are left to goavro (decimals). Decode
// then gives the value or the exact error. So a caller that falls back on
// ok false sees the same values and errors as one that only calls Decode.
// Safe for concurrent use; it never panics on any input.
func (d *Decoder) DecodeNamed(data []byte, vals []any) (names []string, out []any, ok bool) {
	defer func() {
		if p := recover(); p != nil { // Decode reports it, as its decode error
			names, out, ok = nil, vals, false
		}
	}()
	e, buf, off, ok := d.entryFor(data)
	if !ok || e.root.kind != kRecord || e.root.noDirect {
		return nil, vals, false
	}
	c := checker{buf: buf}
	if end, err := c.value(e.root, off, 0); err != nil || end != len(buf) {
		return nil, vals, false
	}
	r := directReader{buf: buf, pos: off}
	start := len(vals)
	for _, f := range e.root.fields {
		v, ok := r.value(f.node)
		if !ok {
			return nil, vals[:start], false
		}
		vals = append(vals, v)
	}
	return e.names, vals, true
}

// entryFor finds the writer schema of data, the buffer its record is in (data,
// or what a zlib-compressed Glue record inflates to) and where the record
// starts in it, as decode does; ok false wherever decode would fail or fall
// back. Registry
// schemas come from the cache only: a fetch (and its retries, during an
// outage) is left to Decode, which caches what it fetched for the next
// records, so that no record waits for the registry twice.
func (d *Decoder) entryFor(data []byte) (e *schemaEntry, buf []byte, off int, ok bool) {
	if d.glue != nil {
		return d.glueEntry(data)
	}
	if d.reg != nil {
		switch {
		case len(data) >= confluentHeaderLen && data[0] == 0:
			id := int64(data[1])<<24 | int64(data[2])<<16 | int64(data[3])<<8 | int64(data[4])
			e := d.reg.ids.peek(id)
			return e, data, confluentHeaderLen, e != nil
		case len(data) > 1 && data[0] == 0xC3 && data[1] == 0x01:
			fp, ok := soeFingerprint(data)
			if !ok {
				return nil, nil, 0, false
			}
			e := (*d.reg.fps.Load())[fp]
			return e, data, soeHeaderLen, e != nil
		}
		return nil, nil, 0, false
	}
	e = d.local
	switch d.framing {
	case FramingBinary:
		return e, data, 0, true
	case FramingSingleObject:
		fp, ok := soeFingerprint(data)
		return e, data, soeHeaderLen, ok && e.hasFingerprint(fp)
	}
	if fp, soe := soeFingerprint(data); soe && e.hasFingerprint(fp) {
		return e, data, soeHeaderLen, true
	}
	return e, data, 0, true
}
