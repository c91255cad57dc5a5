{#
  A fact table fed by both feeds holds, for a while, two readings of the same
  interval: the intraday one (taken every 5 minutes) and, once published the next
  morning, the daily report's. The daily report is the settled record, so after
  each build this deletes intraday rows (`intraday_prefix` names their files) at or
  before the newest interval any daily report has delivered. Intraday rows after it
  stay: they are the only data for today.
#}
{% macro drop_superseded_intraday(relation, intraday_prefix) -%}
    delete from {{ relation }}
    where source_file like '{{ intraday_prefix }}%'
      and settlementdate <= (
          select max(settlementdate)
          from {{ relation }}
          where source_file like 'PUBLIC_DAILY_%'
      )
{%- endmacro %}
