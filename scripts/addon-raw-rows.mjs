// A source change to better-sqlite3's addon: rows in raw mode (arrays, as Dione reads every row)
// built from their values in one call. better-sqlite3 does so for Node ≥ 22; for older Node (the
// machines run Node 20) it sets element after element, each a slow store into a growing array,
// which cost ~7% of a point select and more of a range scan.
//
// Same rules as scripts/sqlite-row-counters.mjs (whose applyChanges applies these).

const WITHIN = '	v8::Local<v8::Value> GetRawRowJS(v8::Isolate* isolate, v8::Local<v8::Context> ctx, sqlite3_stmt* handle, bool safe_ints) {';

export const rawRowChanges = [
  {
    file: 'util/data.cpp',
    what: 'raw rows (Node < 22): the values are gathered first',
    within: WITHIN,
    line: '		v8::Local<v8::Array> row = v8::Array::New(isolate);',
    replace: '		std::vector<v8::Local<v8::Value>> row;',
  },
  {
    file: 'util/data.cpp',
    what: 'raw rows (Node < 22): room for every column',
    within: WITHIN,
    line: '		int column_count = sqlite3_column_count(handle);',
    insert: '		row.reserve(column_count);',
  },
  {
    file: 'util/data.cpp',
    what: 'raw rows (Node < 22): each value is gathered',
    within: WITHIN,
    line: '			row->Set(ctx, i, Data::GetValueJS(isolate, handle, i, safe_ints)).FromJust();',
    replace: '			row.push_back(Data::GetValueJS(isolate, handle, i, safe_ints));',
  },
  {
    file: 'util/data.cpp',
    what: 'raw rows (Node < 22): the array is made from them at once',
    within: WITHIN,
    line: '		return row;',
    replace: '		return v8::Array::New(isolate, row.data(), row.size());',
  },
];
