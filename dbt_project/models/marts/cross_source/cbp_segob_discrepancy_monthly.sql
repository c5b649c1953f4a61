-- CBP and SEGOB count the same returns of Mexican children from two sides (docs/sources.md): the
-- gap between them by month, for two comparisons that keep definitions apart:
--   unaccompanied_minors  CBP encounters of Mexican UC  vs  SEGOB repatriations of
--                         unaccompanied Mexican minors;
--   all_minors            CBP encounters of Mexican UC + accompanied minors  vs  SEGOB
--                         repatriations of Mexican minors, both travel conditions.
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

comparisons as (

    select
        'unaccompanied_minors' as comparison,
        'CBP encounters of unaccompanied children (UC) with citizenship MEXICO, all titles and components (events)'
            as cbp_definition,
        'SEGOB repatriation events of unaccompanied Mexican minors from the US (bulletin section 5)'
            as segob_definition
    union all
    select
        'all_minors',
        'CBP encounters of Mexican minors: UC plus Accompanied Minors, all titles and components (events)',
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
        segob.figures_constructed as segob_figures_constructed
    from months
    cross join comparisons
    left join cbp on cbp.month = months.month
    left join segob on segob.month = months.month

)

select
    month,
    fiscal_year,
    calendar_year,
    comparison,
    cbp_definition,
    segob_definition,
    cbp_count,
    segob_count,
    cbp_count - segob_count as difference,
    (cbp_count - segob_count)::double / nullif(cbp_count, 0) as pct_difference,
    cbp_count is not null and segob_count is not null as both_sides_published,
    title_42_in_force,
    cbp_land_border_regions,
    cbp_vintage,
    cbp_first_published_vintage,
    cbp_source_files,
    segob_vintage,
    segob_first_published_vintage,
    segob_source_files,
    segob_figures_constructed
from joined
