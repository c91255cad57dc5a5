-- Units whose fuel (primary, descriptor) seeds/fuel_categories.csv does not
-- map: the dashboard shows them as 'Other'. Add the pair to the seed.
{{ config(severity='warn') }}
select duid, fuel_primary, fuel_descriptor
from {{ ref('dim_duid') }}
where fuel = 'Other' and fuel_primary is not null
