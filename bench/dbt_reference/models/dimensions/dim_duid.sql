-- Generating units: AEMO's NEM Registration and Exemption List (sheet `PU and
-- Scheduled Loads`, read as text) joined with unit coordinates.
--
-- The list is a spreadsheet people edit: placeholder DUIDs (`-`), `-` or
-- blanks in numeric columns, a unit listed twice under two participants,
-- fuel spelled `Battery storage` and `Battery Storage`, trailing spaces.
-- Every column is read as text and cleaned here; numbers go through try_cast.
--
-- Reference files come only with the daily backfill, so a run that took none
-- (intraday) keeps the units already known instead of rebuilding an empty
-- table: hence an incremental merge on duid rather than the folder's `table`.
-- depends_on: {{ ref('archive_log') }}
{{ config(materialized='incremental', incremental_strategy='merge', unique_key='duid') }}

with registration as (
    select
        trim(DUID) as duid,
        trim("Station Name") as station_name,
        trim(Participant) as participant,
        trim(Region) as region_id,
        trim("Dispatch Type") as dispatch_type,
        nullif(trim("Fuel Source - Primary"), '') as fuel_primary,
        nullif(trim("Fuel Source - Descriptor"), '') as fuel_descriptor,
        nullif(trim("Technology Type - Descriptor"), '') as technology,
        {{ number('"Reg Cap generation (MW)"') }} as capacity_mw,
        {{ number('"Max Cap generation (MW)"') }} as max_capacity_mw
    -- archive_log.py wrote the workbook's sheet as CSV, every cell as text.
    from read_csv('{{ env_var("BENCH_ARCHIVE") }}/duid_registration/*.csv.gz', header = true, all_varchar = true)
    -- `-` is a placeholder row, not a unit.
    where trim(DUID) not in ('', '-')
    -- A unit listed twice (two participants): keep one row, the largest.
    qualify row_number() over (
        partition by trim(DUID)
        order by {{ number('"Reg Cap generation (MW)"') }} desc nulls last, Participant
    ) = 1
),

geo as (
    select
        trim(DUID) as duid,
        latitude,
        longitude
    from read_csv('{{ env_var("BENCH_ARCHIVE") }}/duid_geo/*.gz', header = true, types = {
        'DUID': 'VARCHAR',
        'latitude': 'DOUBLE',
        'longitude': 'DOUBLE'
    })
    where latitude is not null and longitude is not null
    qualify row_number() over (partition by trim(DUID) order by latitude, longitude) = 1
)

select
    r.duid,
    r.station_name,
    r.participant,
    r.region_id,
    -- The dashboard's category, from seeds/fuel_categories.csv; a pair the
    -- seed does not know is 'Other' (and tests/assert_fuel_categories_known
    -- warns about it), never dropped.
    coalesce(c.fuel, 'Other') as fuel,
    r.fuel_primary,
    r.fuel_descriptor,
    r.technology,
    r.dispatch_type,
    regexp_replace(r.region_id, '\d+$', '') as state,
    g.latitude,
    g.longitude,
    r.capacity_mw,
    r.max_capacity_mw
from registration as r
left join {{ ref('fuel_categories') }} as c
    on lower(c.fuel_primary) = lower(r.fuel_primary)
    and lower(c.fuel_descriptor) = lower(r.fuel_descriptor)
left join geo as g on g.duid = r.duid
