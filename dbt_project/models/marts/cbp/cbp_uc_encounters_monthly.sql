-- CBP encounters of unaccompanied children for analysts: one row per published figure (month x
-- component x border region x area x state x citizenship x title x encounter type), from every
-- layout CBP publishes, one file per month (precedence: int_cbp__encounters), with the layout,
-- file, line and vintage it comes from. Columns the month's layout does not publish are NULL.

with encounters as (

    select * from {{ ref('int_cbp__uc_encounters') }}

)

select
    -- concat_ws skips NULLs: an AOR row keeps the id it had before other layouts fed the
    -- mart; state and SBO rows add their state and layout.
    md5(concat_ws(
        '|', month, component, land_border_region, area_of_responsibility,
        citizenship, title_of_authority, encounter_type, state,
        case when source_layout <> 'aor' then source_layout end
    )) as encounter_id,
    month,
    fiscal_year,
    fiscal_month_of_year,
    calendar_year,
    source_layout,
    component,
    land_border_region,
    area_of_responsibility,
    aor_abbv,
    state,
    citizenship,
    citizenship_grouped,
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
    vintages_with_month,
    layouts_with_month
from encounters
