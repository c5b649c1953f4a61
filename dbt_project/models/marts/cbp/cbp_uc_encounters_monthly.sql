-- CBP encounters of unaccompanied children for analysts: one row per published figure (month x
-- component x border region x area x citizenship x title x encounter type), the newest
-- vintage's value, with the file, line and vintage it comes from.

with encounters as (

    select * from {{ ref('int_cbp__uc_encounters') }}

)

select
    md5(concat_ws('|', month, component, land_border_region, area_of_responsibility,
                  citizenship, title_of_authority, encounter_type)) as encounter_id,
    month,
    fiscal_year,
    fiscal_month_of_year,
    calendar_year,
    component,
    land_border_region,
    area_of_responsibility,
    aor_abbv,
    citizenship,
    nationality_iso3,
    nationality_name_en,
    is_mexican,
    title_of_authority,
    encounter_type,
    'encounters (events, not people)' as counting_unit,
    encounters,
    title_42_in_force,
    demographic,
    demographic_published,
    month_grouping,
    source_file,
    source_row,
    vintage,
    first_published_vintage,
    vintages_with_month
from encounters
