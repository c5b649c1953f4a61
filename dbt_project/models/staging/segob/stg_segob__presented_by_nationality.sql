-- Bulletin table 3.1.1 (foreigners presented to / channelled by the INM), one row per
-- nationality and month, as the newest workbook carrying the month published it
-- (macros/rows_of_newest_file.sql: each year's workbook is overwritten monthly).

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'segob_presented_by_nationality'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        continent,
        region,
        country as nationality_segob,
        iso3 as nationality_iso3,
        cast(events as bigint) as events,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
