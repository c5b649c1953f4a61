-- Mexican unaccompanied children encountered by U.S. Border Patrol, by fiscal year and title of
-- authority: the kind of figure Amnesty International's 2021 report on US expulsions of
-- children used (FY2020: Title 8 apprehensions vs Title 42 expulsions).
--
-- Compile with `dbt compile --select usbp_mexican_uc_by_title_fiscal_year` (or `dbt docs
-- generate`), then run target/compiled/returnwatch/analyses/<this file> on the snapshot:
--   returnwatch sql "$(cat dbt_project/target/compiled/returnwatch/analyses/usbp_mexican_uc_by_title_fiscal_year.sql)"
-- On the replay mirror's data (IOM's copy of CBP's files, Southwest land border), FY2020 is
-- 6,299 under Title 8 and 8,060 under Title 42 (14,359 in all).

-- Months whose file does not publish the component (CBP's state layout) are counted in
-- months_without_component, not silently left out of the USBP sums.

with usbp as (

    select
        *,
        component = 'U.S. Border Patrol' as is_usbp
    from {{ ref('cbp_uc_encounters_monthly') }}
    where is_mexican

)

select
    fiscal_year,
    sum(encounters) filter (where is_usbp and title_of_authority = 'Title 8') as title_8_apprehensions,
    sum(encounters) filter (where is_usbp and title_of_authority = 'Title 42') as title_42_expulsions,
    sum(encounters) filter (where is_usbp) as all_encounters,
    round(
        sum(encounters) filter (where is_usbp and title_of_authority = 'Title 42')
            / sum(encounters) filter (where is_usbp), 3
    ) as share_expelled,
    count(distinct month) filter (where is_usbp) as months_published,
    count(distinct month) filter (where component is null) as months_without_component,
    list_sort(list(distinct land_border_region)) as land_border_regions,
    max(vintage) as newest_vintage
from usbp
group by fiscal_year
order by fiscal_year
