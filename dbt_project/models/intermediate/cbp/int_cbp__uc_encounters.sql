-- CBP encounters of unaccompanied children (UC), one row per published figure, with the
-- citizenship harmonised to ISO3 and the fiscal/calendar attributes of the month. Every layout
-- (int_cbp__encounters: one file per month, columns a layout lacks left NULL).

with encounters as (

    select * from {{ ref('int_cbp__encounters') }}
    where demographic = 'UC / Single Minors'

),

labels as (

    select * from {{ ref('int_countries__nationality_labels') }}
    where publisher = 'cbp'

),

months as (

    select * from {{ ref('int_calendar_months') }}

)

select
    encounters.month,
    months.fiscal_year,
    months.fiscal_month_of_year,
    months.calendar_year,
    encounters.source_layout,
    encounters.component,
    encounters.land_border_region,
    encounters.area_of_responsibility,
    encounters.aor_abbv,
    encounters.state,
    encounters.demographic,
    encounters.demographic_published,
    encounters.citizenship,
    encounters.citizenship_grouped,
    labels.nationality_iso3,
    labels.nationality_name_en,
    encounters.citizenship = 'MEXICO' as is_mexican,
    encounters.title_of_authority,
    encounters.encounter_type,
    encounters.encounters,
    months.title_42_in_force,
    encounters.month_grouping,
    encounters.source_file,
    encounters.source_row,
    encounters.vintage,
    encounters.first_published_vintage,
    encounters.vintages_with_month,
    encounters.layouts_with_month
from encounters
left join labels on labels.label_published = encounters.citizenship
left join months on months.month = encounters.month
