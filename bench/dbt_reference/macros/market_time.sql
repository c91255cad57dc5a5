{#
  AEMO stamps every 5-minute dispatch interval with its END time, in market time
  (UTC+10, no daylight saving). The interval 23:55-00:00 is stamped 00:00 of the
  next day but belongs to the day it started in, so a market date is the date of
  (end - 5 minutes).
#}
{% macro market_date(ts) -%}
    cast({{ ts }} - interval 5 minute as date)
{%- endmacro %}

{# '2024_h1' / '2024_h2': the half-year a date falls in (dashboard files are split by it). #}
{% macro half_year(d) -%}
    (strftime({{ d }}, '%Y') || '_h' || case when month({{ d }}) <= 6 then '1' else '2' end)
{%- endmacro %}

{#
  Intraday file names carry the interval they report:
  PUBLIC_DISPATCHSCADA_202401310005_<id>.zip is the interval ending 00:05.
#}
{% macro file_interval(file_name) -%}
    strptime(regexp_extract({{ file_name }}, '_(\d{12})_', 1), '%Y%m%d%H%M')
{%- endmacro %}

{# The market date an intraday file belongs to: one macro built on two others. #}
{% macro file_market_date(file_name) -%}
    {{ market_date(file_interval(file_name)) }}
{%- endmacro %}

{#
  A number from a spreadsheet column read as text: `-`, blanks and anything
  that is not a number become NULL.
#}
{% macro number(column) -%}
    try_cast(nullif(nullif(trim({{ column }}), '-'), '') as double)
{%- endmacro %}
