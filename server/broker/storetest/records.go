package storetest

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// recordCases pin down the record space: its own namespace, written only
// through Commit, read by key or by prefix.
func recordCases() []storeCase {
	rec := func(k, v string) broker.Record { return broker.Record{Key: k, Value: []byte(v)} }
	return []storeCase{
		{"GetSetDelete", func(t *testing.T, s broker.Store) {
			_, err := s.RecordGet(t.Context(), "job/1")
			isErr(t, "RecordGet of a missing record", err, broker.ErrRecordNotFound)
			commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{rec("job/1", "one")}})
			got, err := s.RecordGet(t.Context(), "job/1")
			must(t, "RecordGet", err)
			sameBytes(t, "job/1", got, []byte("one"))
			commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{rec("job/1", "uno")}})
			got, _ = s.RecordGet(t.Context(), "job/1")
			sameBytes(t, "job/1 overwritten", got, []byte("uno"))
			commit(t, s, broker.CommitGroup{RecordDelete: []string{"job/1", "job/missing"}})
			_, err = s.RecordGet(t.Context(), "job/1")
			isErr(t, "RecordGet after delete", err, broker.ErrRecordNotFound)
		}},
		{"ValuesKeepEveryByte", func(t *testing.T, s broker.Store) {
			for _, v := range sampleValues {
				commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{{Key: "v/" + v.name, Value: v.value}}})
				got, err := s.RecordGet(t.Context(), "v/"+v.name)
				must(t, "RecordGet "+v.name, err)
				sameBytes(t, v.name, got, v.value)
			}
		}},
		// The two spaces never meet: a key/value key reaches no record and a
		// record is no key/value entry, whatever the names.
		{"ApartFromKeyValues", func(t *testing.T, s broker.Store) {
			commit(t, s, broker.CommitGroup{RecordSet: []broker.Record{rec("job/1", "engine")}})
			kvSet(t, s, kv("job/2", `"public"`, false))
			_, err := s.KVGet(t.Context(), "job/1")
			isErr(t, "KVGet of a record's key", err, broker.ErrKeyNotFound)
			_, err = s.RecordGet(t.Context(), "job/2")
			isErr(t, "RecordGet of a key/value key", err, broker.ErrRecordNotFound)
			all, err := s.KVScan(t.Context(), "")
			must(t, "KVScan", err)
			sameSlice(t, "key/values", pluck(all, func(e broker.KVEntry) string { return e.Key }), []string{"job/2"})
			_, err = s.KVDeletePrefix(t.Context(), "")
			must(t, "KVDeletePrefix", err)
			sameSlice(t, "records after deleting every key/value", recordKeys(recordScan(t, s, broker.RecordScanParams{})), []string{"job/1"})
		}},
		{"ScanPrefixAfterLimit", func(t *testing.T, s broker.Store) {
			var rs []broker.Record
			for _, k := range []string{"job/2", "job/1", "job/10/t/1", "job/10/t/2", "jobs", "other", "job/"} {
				rs = append(rs, rec(k, k))
			}
			commit(t, s, broker.CommitGroup{RecordSet: rs})
			got := recordScan(t, s, broker.RecordScanParams{Prefix: "job/"})
			sameSlice(t, "job/ records", recordKeys(got), []string{"job/", "job/1", "job/10/t/1", "job/10/t/2", "job/2"})
			sameBytes(t, "job/1 value", got[1].Value, []byte("job/1"))
			got = recordScan(t, s, broker.RecordScanParams{Prefix: "job/", After: "job/10/t/1", Limit: 2})
			sameSlice(t, "a page after job/10/t/1", recordKeys(got), []string{"job/10/t/2", "job/2"})
			got = recordScan(t, s, broker.RecordScanParams{Prefix: "job/10/", Limit: 1})
			sameSlice(t, "the first of job/10/", recordKeys(got), []string{"job/10/t/1"})
			equal(t, "every record", len(recordScan(t, s, broker.RecordScanParams{})), len(rs))
			n, err := s.RecordDeletePrefix(t.Context(), "job/1")
			must(t, "RecordDeletePrefix", err)
			equal(t, "deleted", n, 3)
			sameSlice(t, "left", recordKeys(recordScan(t, s, broker.RecordScanParams{})), []string{"job/", "job/2", "jobs", "other"})
		}},
		// A record change is part of its group: a group skipped for a dead
		// lease writes no record.
		{"PartOfTheGroup", func(t *testing.T, s broker.Store) {
			push(t, s, "job/1/map", base, "task")
			l := leaseOne(t, s, "job/1/map", base)
			g := broker.CommitGroup{
				Acks:      []broker.LeaseRef{{Queue: "job/1/map", LeaseID: l.ID}},
				RecordSet: []broker.Record{rec("job/1/t/1", "done")},
			}
			sameSlice(t, "applied", appliedOf(commit(t, s, g, g)), []bool{true, false})
			got, err := s.RecordGet(t.Context(), "job/1/t/1")
			must(t, "RecordGet", err)
			sameBytes(t, "task record", got, []byte("done"))
			commit(t, s, broker.CommitGroup{
				Acks:         []broker.LeaseRef{{Queue: "job/1/map", LeaseID: l.ID}},
				RecordDelete: []string{"job/1/t/1"},
			})
			_, err = s.RecordGet(t.Context(), "job/1/t/1")
			must(t, "RecordGet after a skipped delete", err)
		}},
	}
}
