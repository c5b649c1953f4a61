-- CBP encounters from every layout CBP publishes (AOR, state, Southwest border "SBO"), one row
-- per published figure, every month taken from ONE file. The precedence, month by month:
--
--   1. the newest release: the greatest vintage month (CBP uploads the AOR, state and SBO files
--      of a monthly release side by side, a day apart at most, so they count as one release);
--   2. within it, the richest layout: aor (component, area, encounter type) > state (state,
--      no component or encounter type) > sbo (Southwest border only, five citizenship groups);
--   3. then the newest vintage day, then the greater sha256 (arbitrary but stable).
--
-- Each staging model already keeps the newest file per month of its layout, so the choice is
-- made among (at most) three candidates. A month is never summed over two files: an AOR file
-- and a state file of the same months give one set of figures.
--
-- Columns a layout does not publish are NULL, never derived (docs: cbp_layout_nulls):
-- component and encounter_type in the state layout, area_of_responsibility / aor_abbv in the
-- state and SBO layouts, state outside the state layout. The SBO file is CBP's Southwest land
-- border file, so its land_border_region is 'Southwest Land Border' (what the file covers,
-- not a guess); its citizenship is the published group upper-cased (`Other` -> 'OTHER', which
-- there means every citizenship but El Salvador, Guatemala, Honduras and Mexico).

with aor as (

    select
        'aor' as source_layout,
        month, fiscal_year, fiscal_year_published, month_grouping,
        component, land_border_region, area_of_responsibility, aor_abbv,
        cast(null as varchar) as state,
        demographic, demographic_published,
        citizenship, false as citizenship_grouped,
        title_of_authority, encounter_type, encounters,
        source_file, source_row, vintage
    from {{ ref('stg_cbp__encounters_aor') }}

),

state as (

    select
        'state' as source_layout,
        month, fiscal_year, fiscal_year_published, month_grouping,
        cast(null as varchar) as component, land_border_region,
        cast(null as varchar) as area_of_responsibility, cast(null as varchar) as aor_abbv,
        state,
        demographic, demographic_published,
        citizenship, false as citizenship_grouped,
        title_of_authority, cast(null as varchar) as encounter_type, encounters,
        source_file, source_row, vintage
    from {{ ref('stg_cbp__encounters_state') }}

),

sbo as (

    select
        'sbo' as source_layout,
        month, fiscal_year, fiscal_year_published, month_grouping,
        component, 'Southwest Land Border' as land_border_region,
        cast(null as varchar) as area_of_responsibility, cast(null as varchar) as aor_abbv,
        cast(null as varchar) as state,
        demographic, demographic_published,
        upper(citizenship_grouping) as citizenship, true as citizenship_grouped,
        title_of_authority, encounter_type, encounters,
        source_file, source_row, vintage
    from {{ ref('stg_cbp__encounters_sbo') }}

),

all_layouts as (

    select * from aor
    union all
    select * from state
    union all
    select * from sbo

),

candidates as (

    -- One candidate file per (month, layout): the staging models' newest file.
    select
        month,
        source_layout,
        source_file,
        max(vintage) as vintage,
        case source_layout when 'aor' then 1 when 'state' then 2 else 3 end as layout_rank
    from all_layouts
    group by month, source_layout, source_file

),

chosen as (

    select month, source_file, source_layout
    from candidates
    qualify row_number() over (
            partition by month
            order by date_trunc('month', vintage) desc, layout_rank, vintage desc, source_file desc
        ) = 1

),

-- Every file of any layout that carries the month (all vintages), for first_published_vintage
-- and vintages_with_month.
raw_files as (

    select distinct cast(month as date) as month, source_file, vintage, 'aor' as source_layout
    from {{ source('raw', 'cbp_encounters_aor') }}
    union
    select distinct cast(month as date), source_file, vintage, 'state'
    from {{ source('raw', 'cbp_encounters_state') }}
    union
    select distinct cast(month as date), source_file, vintage, 'sbo'
    from {{ source('raw', 'cbp_encounters_sbo') }}

),

month_files as (

    select
        month,
        count(distinct source_file) as vintages_with_month,
        min(vintage) as first_published_vintage,
        list_sort(list(distinct source_layout)) as layouts_with_month
    from raw_files
    group by month

)

select
    all_layouts.month,
    all_layouts.fiscal_year,
    all_layouts.fiscal_year_published,
    all_layouts.month_grouping,
    all_layouts.source_layout,
    all_layouts.component,
    all_layouts.land_border_region,
    all_layouts.area_of_responsibility,
    all_layouts.aor_abbv,
    all_layouts.state,
    all_layouts.demographic,
    all_layouts.demographic_published,
    all_layouts.citizenship,
    all_layouts.citizenship_grouped,
    all_layouts.title_of_authority,
    all_layouts.encounter_type,
    all_layouts.encounters,
    all_layouts.source_file,
    all_layouts.source_row,
    all_layouts.vintage,
    month_files.first_published_vintage,
    month_files.vintages_with_month,
    month_files.layouts_with_month
from all_layouts
inner join chosen
    on chosen.month = all_layouts.month
        and chosen.source_file = all_layouts.source_file
        and chosen.source_layout = all_layouts.source_layout
left join month_files on month_files.month = all_layouts.month
