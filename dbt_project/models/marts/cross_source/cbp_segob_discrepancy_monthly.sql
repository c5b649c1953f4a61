-- CBP's encounters of Mexican children against SEGOB's repatriation events of Mexican minors
-- received from the US, by month. These are NOT the same events counted twice: CBP counts
-- encounters (children it later sent to HHS care included), SEGOB counts repatriations it
-- received; both count events, not people; month boundaries, region and repeat crossings differ.
-- Two comparisons:
--   unaccompanied_minors            CBP encounters of Mexican UC  vs  SEGOB repatriations of
--                                   unaccompanied Mexican minors (the gap the monitor watches);
--   uc_plus_ofo_accompanied_minors  CBP encounters of Mexican UC + CBP "Accompanied Minors"  vs
--                                   SEGOB repatriations of Mexican minors, both travel conditions.
--       DHS defines "Accompanied Minors" as minors encountered by OFO at ports of entry with a
--       US-citizen or lawful-resident parent; children crossing with their parents are inside
--       family units (FMUA) and cannot be split out, so CBP has no "all minors" figure. The gap
--       of this comparison is definitional: shown for reference, never alerted on.
-- A side that has not published a month is NULL, and so are the difference and percentage.

with cbp as (

    select * from {{ ref('int_cbp__minor_encounters_monthly') }}

),

segob as (

    select * from {{ ref('int_segob__mexican_minor_repatriations_monthly') }}

),

months as (

    select * from {{ ref('int_calendar_months') }}
    where month in (select month from cbp union select month from segob)

),

policy as (

    select * from {{ ref('int_policy__regimes_by_month') }}

),

comparisons as (

    select
        'unaccompanied_minors' as comparison,
        'CBP encounters of unaccompanied children (UC) with citizenship MEXICO, all titles and components (events)'
            as cbp_definition,
        'SEGOB repatriation events of unaccompanied Mexican minors from the US (bulletin section 5)'
            as segob_definition
    union all
    select
        'uc_plus_ofo_accompanied_minors',
        'CBP encounters of Mexican UC + OFO accompanied minors (children in family units not included), all titles (events)',
        'SEGOB repatriation events of Mexican minors from the US, accompanied and unaccompanied (bulletin section 5)'

),

joined as (

    select
        months.month,
        months.fiscal_year,
        months.calendar_year,
        months.title_42_in_force,
        comparisons.comparison,
        comparisons.cbp_definition,
        comparisons.segob_definition,
        comparisons.comparison = 'unaccompanied_minors' as definitions_comparable,
        case comparisons.comparison
            when 'unaccompanied_minors' then cbp.mexican_uc
            else cbp.mexican_uc + cbp.mexican_accompanied_minors
        end as cbp_count,
        case comparisons.comparison
            when 'unaccompanied_minors' then segob.unaccompanied_minors
            else segob.all_minors
        end as segob_count,
        cbp.land_border_regions as cbp_land_border_regions,
        cbp.vintage as cbp_vintage,
        cbp.first_published_vintage as cbp_first_published_vintage,
        cbp.source_files as cbp_source_files,
        segob.vintage as segob_vintage,
        segob.first_published_vintage as segob_first_published_vintage,
        segob.source_files as segob_source_files,
        segob.figures_constructed as segob_figures_constructed,
        policy.policy_regimes_in_force,
        policy.policy_changes_in_month
    from months
    cross join comparisons
    left join cbp on cbp.month = months.month
    left join segob on segob.month = months.month
    left join policy on policy.month = months.month

)

select
    month,
    fiscal_year,
    calendar_year,
    comparison,
    cbp_definition,
    segob_definition,
    definitions_comparable,
    cbp_count,
    segob_count,
    cbp_count - segob_count as difference,
    (cbp_count - segob_count)::double / nullif(cbp_count, 0) as pct_difference,
    cbp_count is not null and segob_count is not null as both_sides_published,
    title_42_in_force,
    policy_regimes_in_force,
    policy_changes_in_month,
    cbp_land_border_regions,
    cbp_vintage,
    cbp_first_published_vintage,
    cbp_source_files,
    segob_vintage,
    segob_first_published_vintage,
    segob_source_files,
    segob_figures_constructed
from joined
