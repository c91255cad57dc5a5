{#
  The seed's way of reading AEMO MMS files: the archived CSV holds several
  tables, so read it without a header, every column as text, `width` positional
  columns (c0 = record type, c1 = report, c2 = sub-table, c3 = version, c4… =
  the table's fields), pad short rows with NULL and skip rows wider than the
  table being read. Models then filter `c0 = 'D'` and the table and cast the
  columns they use, with try_cast: DuckDB pushes filters (a test's
  `where settlementdate is null`) into the scan ahead of `c0 = 'D'`, so a
  plain cast meets the `C`/`I` rows' text and fails.
#}
{% macro read_mms(source, width) -%}
read_csv(
    '{{ env_var("BENCH_ARCHIVE") }}/{{ source }}/*.gz',
    header = false,
    all_varchar = true,
    null_padding = true,
    ignore_errors = true,
    auto_detect = false,
    filename = true,
    columns = {
        {%- for i in range(width) %}
        'c{{ i }}': 'VARCHAR'{{ ',' if not loop.last }}
        {%- endfor %}
    }
)
{%- endmacro %}

{# The downloaded zip a row came from: the archived member name, as `.zip`. #}
{% macro zip_name(filename) -%}
    regexp_extract({{ filename }}, '([^/]+)\.(CSV|csv)\.gz$', 1) || '.zip'
{%- endmacro %}
